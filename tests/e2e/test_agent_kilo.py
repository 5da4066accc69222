"""Kilo CLI's other wire formats: the same tool task with reasoning, Kilo speaking Anthropic Messages,
Responses or Gemini to the gateway (`crossroute launch kilo --format F`), each against two upstream
kinds other than its own, so the translation runs both ways, and Gemini against its own."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from tests.conftest import CLIENT_KEY, MODELS
from tests.e2e.agents import Stack, assert_result_paired_with_call, complete_task
from tests.upstream_view import VIEWS

pytestmark = pytest.mark.e2e

FORMAT_CELLS = [
    ("anthropic", "openai-responses"), ("anthropic", "gemini"),
    ("openai-responses", "anthropic"), ("openai-responses", "gemini"),
    ("gemini", "openai-responses"), ("gemini", "anthropic"), ("gemini", "gemini"),
]
# Kilo asks a custom model for no reasoning in these formats (no thinking, no reasoning effort), so the
# gateway turns it off upstream; only Gemini thinks regardless, and Kilo hands its signature back. Kilo
# speaking Gemini keeps Gemini's own signature but drops a foreign one, which the gateway sends on an
# empty thought part.
REPLAYED = {("anthropic", "gemini"), ("openai-responses", "gemini"), ("gemini", "gemini")}


@pytest.mark.parametrize(("fmt", "upstream"), FORMAT_CELLS)
def test_tool_task_with_reasoning_in_another_format(fmt: str, upstream: str, stack: Stack, client_path: str,
                                                    tmp_path: Path) -> None:
    fake, gateway = stack
    fake.clear()
    signature = base64.b64encode(secrets.token_bytes(24)).decode()
    run = complete_task("kilo", fake, gateway, CLIENT_KEY, MODELS[upstream], client_path, tmp_path, signature, fmt)
    seen = VIEWS[upstream](run.carrying.body)
    assert_result_paired_with_call(seen, run.secret)
    assert (signature in seen.signatures) == ((fmt, upstream) in REPLAYED), seen.signatures
