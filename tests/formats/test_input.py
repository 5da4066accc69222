"""The shared readers of untrusted client JSON (crossroute.formats._input)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crossroute import ir
from crossroute.formats import _input as read


def _error(reader: Callable[..., Any], value: Any, **options: Any) -> ir.GatewayError:
    with pytest.raises(ir.GatewayError) as caught:
        reader(value, "a.b[0]", **options)
    error = caught.value
    assert (error.status, error.kind, error.param) == (400, "invalid_request", "a.b[0]")
    return error


@pytest.mark.parametrize(
    ("reader", "good", "absent"),
    [
        (read.optional_dict, {"k": 1}, None),
        (read.dict_or_empty, {"k": 1}, {}),
        (read.optional_list, [1], None),
        (read.list_or_empty, [1], []),
        (read.optional_str, "", None),
        (read.optional_bool, False, None),
        (read.optional_int, 0, None),
        (read.optional_number, 0.5, None),
    ],
)
def test_optional_readers_pass_values_and_absence(reader: Callable[..., Any], good: Any, absent: Any) -> None:
    assert reader(good, "p") == good
    assert reader(None, "p") == absent


@pytest.mark.parametrize(
    ("reader", "wrong", "message"),
    [
        (read.required_dict, [], "'a.b[0]' must be an object, got array"),
        (read.optional_dict, "x", "'a.b[0]' must be an object, got string"),
        (read.list_or_empty, {}, "'a.b[0]' must be an array, got object"),
        (read.required_str, 3, "'a.b[0]' must be a string, got integer"),
        (read.non_empty_str, "", "'a.b[0]' must not be empty"),
        (read.optional_bool, "yes", "'a.b[0]' must be a boolean, got string"),
        (read.optional_int, True, "'a.b[0]' must be an integer, got boolean"),
        (read.optional_int, 2.0, "'a.b[0]' must be an integer, got number"),
        (read.optional_number, False, "'a.b[0]' must be a number, got boolean"),
    ],
)
def test_wrong_types_name_the_path_and_what_was_expected(
    reader: Callable[..., Any], wrong: Any, message: str
) -> None:
    assert _error(reader, wrong).message == message


@pytest.mark.parametrize("reader", [read.required_dict, read.required_list, read.required_str, read.non_empty_str])
def test_required_readers_say_a_missing_field_is_required(reader: Callable[..., Any]) -> None:
    assert "'a.b[0]' is required and must be " in _error(reader, None).message


def test_int_options() -> None:
    assert read.optional_int(1024.0, "p", whole_floats=True) == 1024
    assert _error(read.optional_int, 1.5, whole_floats=True).message == "'a.b[0]' must be an integer, got number"
    assert _error(read.optional_int, -1.0, minimum=0, whole_floats=True).message == "'a.b[0]' must be at least 0, got -1"
    assert read.optional_int(-1, "p") == -1


def test_number_is_a_float_and_strings_keep_empty() -> None:
    assert read.optional_number(3, "p") == 3.0 and isinstance(read.optional_number(3, "p"), float)
    assert read.required_str("", "p") == ""
    assert read.non_empty_str("x", "p") == "x"
