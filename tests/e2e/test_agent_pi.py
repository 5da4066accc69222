"""pi's other wire formats: the same tool task with reasoning, pi speaking Responses, Anthropic
Messages or Gemini to the gateway (`crossroute launch pi --format F`), each against two upstream
kinds other than its own, so the translation runs both ways."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from tests.conftest import CLIENT_KEY, MODELS
from tests.e2e.agents import SIGNED_UPSTREAMS, Stack, assert_result_paired_with_call, complete_task
from tests.upstream_view import VIEWS

pytestmark = pytest.mark.e2e

FORMAT_CELLS = [
    ("openai-responses", "anthropic"), ("openai-responses", "gemini"),
    ("anthropic", "openai-responses"), ("anthropic", "gemini"),
    ("gemini", "openai"), ("gemini", "anthropic"),
]


@pytest.mark.parametrize(("fmt", "upstream"), FORMAT_CELLS)
def test_tool_task_with_reasoning_in_another_format(fmt: str, upstream: str,
                                                    stack: Stack,
                                                    client_path: str, tmp_path: Path) -> None:
    fake, gateway = stack
    fake.clear()
    signature = base64.b64encode(secrets.token_bytes(24)).decode()
    run = complete_task("pi", fake, gateway, CLIENT_KEY, MODELS[upstream], client_path, tmp_path, signature, fmt)
    seen = VIEWS[upstream](run.carrying.body)
    assert_result_paired_with_call(seen, run.secret)
    if upstream in SIGNED_UPSTREAMS:
        # pi keeps signed reasoning in every format that has a field for it and hands it back
        assert signature in seen.signatures
    else:
        assert seen.signatures == []
