"""What `crossroute serve` writes on stderr: an access line per request, warnings
for refused keys and failing upstreams (rate-limited), debug lines on request,
never a secret, never a forged line; text or JSON."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from crossroute.config import ConfigError, parse_config
from crossroute.logs import Throttle, _Clock, field_value
from tests.conftest import MODELS, UPSTREAM_KEY, gateway_config
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import free_port
from tests.test_cli import wait_until_healthy

CLIENT_KEY = "sk-client-SECRET-4242"
WRONG_KEY = "sk-wrong-SECRET-0007"
WRONG_UPSTREAM_KEY = "sk-upstream-SECRET-0009"


class ServedGateway:
    """A `crossroute serve` process whose stderr goes to a file the test reads."""

    def __init__(self, tmp: Path, config: dict[str, Any], *args: str) -> None:
        self.port = free_port()
        config["server"]["port"] = self.port
        config["state"] = {"path": str(tmp / "state.sqlite3")}
        path = tmp / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log_path = tmp / "stderr.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crossroute.cli", "serve", "--config", str(path), "--workers", "1", *args],
            stdout=subprocess.DEVNULL, stderr=self._log, stdin=subprocess.DEVNULL)
        wait_until_healthy(self.port)
        if config["server"].get("access_log", True) and "--no-access-log" not in args:
            self.wait_for(0, lambda lines: any("/health" in line for line in lines))  # the check's line is out

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self._log.close()

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def lines_after(self, mark: int) -> list[str]:
        return self.text()[mark:].splitlines()

    def mark(self) -> int:
        return len(self.text())

    def wait_for(self, mark: int, found: Callable[[list[str]], bool]) -> list[str]:
        """The lines written since `mark`, once `found` holds for them (bounded wait)."""
        deadline = time.monotonic() + 10
        while True:
            lines = self.lines_after(mark)
            if found(lines):
                return lines
            assert time.monotonic() < deadline, f"log lines never matched: {lines[-5:]}"
            time.sleep(0.05)

    def exchange(self, raw: bytes) -> bytes:
        """Send one request (or several) and read until the gateway closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(raw)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        return received


def http(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
         key: str | None = CLIENT_KEY, close: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if close:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chat(model: str = MODELS["openai"], stream: bool = False) -> bytes:
    """A request both Chat and Messages read (max_tokens for Messages)."""
    return orjson.dumps({"model": model, "stream": stream, "max_tokens": 50,
                         "messages": [{"role": "user", "content": "hi"}]})


def access_fields(line: str) -> dict[str, str]:
    message = line.split(" crossroute.access: ", 1)[1]
    return dict(token.split("=", 1) for token in message.split(" "))


def access_lines(lines: list[str], path: str | None = None) -> list[dict[str, str]]:
    """The access lines among `lines`, those for `path` if given (the start-up
    health checks may log theirs late)."""
    found = [access_fields(line) for line in lines if " INFO crossroute.access: " in line]
    return [line for line in found if path is None or line["path"] == path]


def config_for(fake: FakeUpstream, **server: Any) -> dict[str, Any]:
    """The suite's gateway config, plus a provider with a bad key before a good
    one and a provider nobody listens for."""
    config = gateway_config(fake.url)
    config["server"] = {"api_keys": [CLIENT_KEY], **server}
    config["providers"] += [
        {"name": "twokeys", "kind": "openai", "base_url": f"{fake.url}/v1",
         "api_keys": [WRONG_UPSTREAM_KEY, UPSTREAM_KEY], "models": [{"name": "two-up", "upstream": "chat-up-real"}]},
        {"name": "down", "kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
         "api_keys": ["k-a", "k-b"], "models": ["down-model"]},
    ]
    return config


@pytest.fixture(scope="module")
def debug_gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    served = ServedGateway(tmp_path_factory.mktemp("debug"), config_for(fake), "--log-level", "debug")
    yield served
    served.stop()


def test_access_line_says_what_was_asked_where_it_went_and_how_it_went(debug_gateway: ServedGateway) -> None:
    mark = debug_gateway.mark()
    received = debug_gateway.exchange(http("POST", "/v1/chat/completions?key=ignored", chat()))
    assert received.startswith(b"HTTP/1.1 200 ")
    path = "/v1/chat/completions"
    [line] = access_lines(debug_gateway.wait_for(mark, lambda lines: bool(access_lines(lines, path))), path)
    assert {k: line[k] for k in ("client", "method", "path", "status", "model", "provider", "account", "bytes")} == {
        "client": "127.0.0.1", "method": "POST", "path": "/v1/chat/completions", "status": "200",
        "model": MODELS["openai"], "provider": "up-openai", "account": "up-openai#0", "bytes": str(len(received))}
    assert 0 <= int(line["ttfb_us"]) <= int(line["duration_us"]) < 10_000_000


def test_a_stream_is_logged_with_the_bytes_the_client_got(debug_gateway: ServedGateway) -> None:
    mark = debug_gateway.mark()
    received = debug_gateway.exchange(http("POST", "/v1/messages", chat(MODELS["openai"], stream=True)))
    assert received.startswith(b"HTTP/1.1 200 ") and received.endswith(b"0\r\n\r\n")
    lines = debug_gateway.wait_for(mark, lambda lines: bool(access_lines(lines, "/v1/messages")))
    [line] = access_lines(lines, "/v1/messages")
    assert (line["status"], line["provider"], line["bytes"]) == ("200", "up-openai", str(len(received)))
    debug = "\n".join(lines)
    assert f"DEBUG crossroute.routing: {MODELS['openai']} -> up-openai/chat-up-real (translated), account up-openai#0" \
        in debug
    assert f"DEBUG crossroute.routing: stream {MODELS['openai']} finished on account up-openai#0:" in debug


def test_account_ids_are_the_keys_places_and_a_failed_account_is_a_warning(debug_gateway: ServedGateway) -> None:
    mark = debug_gateway.mark()
    for _ in range(2):  # round-robin: one of the two starts on the bad key
        assert debug_gateway.exchange(http("POST", "/v1/chat/completions", chat("two-up"))).startswith(b"HTTP/1.1 200")
    path = "/v1/chat/completions"
    lines = debug_gateway.wait_for(mark, lambda lines: len(access_lines(lines, path)) == 2)
    assert [line["account"] for line in access_lines(lines, path)] == ["twokeys#1", "twokeys#1"]
    warnings = [line for line in lines if " WARNING crossroute.upstream: " in line]
    assert len(warnings) == 1
    assert "provider twokeys account twokeys#0 (127.0.0.1:" in warnings[0] and "failed: HTTP 401" in warnings[0]
    assert "DEBUG crossroute.routing: account twokeys#0 cools down for 300 s after status 401" in "\n".join(lines)


def test_an_unreachable_upstream_is_a_warning_naming_provider_account_and_address(
        debug_gateway: ServedGateway) -> None:
    mark = debug_gateway.mark()
    received = debug_gateway.exchange(http("POST", "/v1/chat/completions", chat("down-model")))
    assert received.startswith(b"HTTP/1.1 502 ")
    lines = debug_gateway.wait_for(mark, lambda lines: bool(access_lines(lines, "/v1/chat/completions")))
    warnings = sorted(line.split(": ", 1)[1] for line in lines if " WARNING crossroute.upstream: " in line)
    assert [w.split(" (")[0] for w in warnings] == ["provider down account down#0", "provider down account down#1"]
    assert all("failed: cannot connect to 127.0.0.1:" in w for w in warnings)
    [line] = access_lines(lines, "/v1/chat/completions")
    assert (line["status"], line["provider"]) == ("502", "down")


def test_a_stream_the_upstream_breaks_is_a_warning(debug_gateway: ServedGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="one two three four five six", break_after=1))
    mark = debug_gateway.mark()
    received = debug_gateway.exchange(http("POST", "/v1/chat/completions", chat(stream=True)))
    assert received.startswith(b"HTTP/1.1 200 ")
    lines = debug_gateway.wait_for(mark, lambda lines: bool(access_lines(lines, "/v1/chat/completions")))
    assert any(" WARNING crossroute.upstream: provider up-openai account up-openai#0 (127.0.0.1:" in line
               and "failed: the stream broke: " in line for line in lines)
    [line] = access_lines(lines, "/v1/chat/completions")
    assert (line["status"], line["bytes"]) == ("200", str(len(received)))


def test_a_client_gone_before_the_answer_is_logged_as_499(debug_gateway: ServedGateway,
                                                        clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="too late", delay=3))
    mark = debug_gateway.mark()
    with socket.create_connection(("127.0.0.1", debug_gateway.port), timeout=10) as sock:
        sock.sendall(http("POST", "/v1/chat/completions", chat()))
        debug_gateway.wait_for(mark, lambda lines: any("DEBUG crossroute.routing: chat-up -> " in line
                                                       for line in lines))
    lines = debug_gateway.wait_for(mark, lambda lines: bool(access_lines(lines, "/v1/chat/completions")))
    [line] = access_lines(lines, "/v1/chat/completions")
    assert (line["status"], line["bytes"], line["ttfb_us"], line["provider"]) == ("499", "0", "-", "up-openai")


def test_no_key_reaches_the_log_even_at_debug_level(debug_gateway: ServedGateway) -> None:
    body = chat()
    gemini = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    gemini_path = f"/v1beta/models/{MODELS['gemini']}:generateContent"
    for key in (CLIENT_KEY, WRONG_KEY):
        debug_gateway.exchange(http("POST", f"{gemini_path}?key={key}", gemini, key=None))
        debug_gateway.exchange(http("POST", f"/v1/messages?key={key}", body, key=None))
        debug_gateway.exchange(http("POST", "/v1/messages", body, key=None, headers={"x-api-key": key}))
        debug_gateway.exchange(http("POST", gemini_path, gemini, key=None, headers={"x-goog-api-key": key}))
        debug_gateway.exchange(http("GET", "/v1/models", key=key))
    debug_gateway.exchange(http("POST", "/v1/chat/completions", chat("two-up")))  # the wrong upstream key, maybe
    mark = debug_gateway.mark()
    debug_gateway.exchange(http("GET", "/health"))
    debug_gateway.wait_for(mark, lambda lines: bool(access_lines(lines)))
    log = debug_gateway.text()
    assert "SECRET" not in log and UPSTREAM_KEY not in log
    assert " WARNING crossroute.auth: refused POST /v1beta/models/gemini-up:generateContent: a wrong client key" in log


def test_a_newline_in_a_path_cannot_forge_a_log_line(debug_gateway: ServedGateway) -> None:
    forged = "%0A2030-01-01T00:00:00.000Z%20INFO%20crossroute.access:%20client=6.6.6.6%0D%1B[31m%7F%C2%85%E2%80%A8"
    mark = debug_gateway.mark()
    assert debug_gateway.exchange(http("GET", f"/v1/models{forged}")).startswith(b"HTTP/1.1 404 ")
    assert debug_gateway.exchange(http("GET", f"/v1/models{forged}", key=None)).startswith(b"HTTP/1.1 401 ")
    assert debug_gateway.exchange(http("POST", "/v1/chat/completions", chat(f"x\n{forged}"))).startswith(
        b"HTTP/1.1 400 ")  # such a model name is refused, and still logged
    lines = debug_gateway.wait_for(mark, lambda lines: len(access_lines(lines)) >= 3)
    assert not any(line.startswith("2030") or "6.6.6.6" in line.split(": ", 1)[0] for line in lines)
    assert all(line.isprintable() for line in lines)
    paths = [line["path"] for line in access_lines(lines)][:2]
    expected = "/v1/models\\n2030-01-01T00:00:00.000Z\\x20INFO\\x20crossroute.access:\\x20client=6.6.6.6\\r\\x1b[31m\\x7f\\x85\\u2028"
    assert paths == [expected, expected]
    assert any(f"refused GET {expected}: no client key" in line for line in lines)


def test_json_format_has_one_object_per_line_and_access_fields_as_keys(
        fake: FakeUpstream, tmp_path: Path) -> None:
    served = ServedGateway(tmp_path, config_for(fake, log_format="json"), "--log-level", "debug")
    try:
        mark = served.mark()
        received = served.exchange(http("POST", "/v1/chat/completions", chat()))
        served.exchange(http("GET", "/v1/models%0Aforged", key=WRONG_KEY))
        lines = served.wait_for(mark, lambda lines: sum('"crossroute.access"' in line for line in lines) >= 2)
    finally:
        served.stop()
    entries = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    first, second = (e for e in entries if e["logger"] == "crossroute.access")
    assert {k: first[k] for k in ("client", "method", "path", "status", "model", "provider", "account", "bytes")} == {
        "client": "127.0.0.1", "method": "POST", "path": "/v1/chat/completions", "status": 200,
        "model": MODELS["openai"], "provider": "up-openai", "account": "up-openai#0", "bytes": len(received)}
    assert 0 <= first["ttfb_us"] <= first["duration_us"]
    assert (second["status"], second["path"], second["model"]) == (401, "/v1/models\\nforged", None)
    assert any(e["logger"] == "crossroute.auth" and e["level"] == "WARNING" for e in entries)
    assert any(e["logger"] == "crossroute.routing" and e["level"] == "DEBUG" for e in entries)


def test_refused_key_floods_write_a_bounded_number_of_warnings_and_the_access_log_can_be_off(
        fake: FakeUpstream, tmp_path: Path) -> None:
    served = ServedGateway(tmp_path, config_for(fake), "--no-access-log")
    flood = 300
    try:
        mark = served.mark()
        assert served.exchange(http("POST", "/v1/chat/completions", chat())).startswith(b"HTTP/1.1 200 ")
        for key in (WRONG_KEY, None):  # a refused key closes its connection: one connection each
            answers = [served.exchange(http("GET", "/v1/models", key=key, close=False)) for _ in range(flood)]
            assert all(answer.startswith(b"HTTP/1.1 401 ") for answer in answers)
    finally:
        served.stop()
    lines = served.lines_after(mark)
    warnings = [line for line in lines if " WARNING crossroute.auth: " in line]
    assert 2 <= len(warnings) <= 4  # one per reason (wrong key, no key) per 10 s; the test may straddle two
    assert not access_lines(lines)
    assert "listening on http://127.0.0.1:" in served.text()  # the banner stays


def test_the_log_keys_are_checked_in_the_config() -> None:
    assert parse_config("server: {access_log: false, log_format: json}\n").server.log_format == "json"
    with pytest.raises(ConfigError, match="server.log_format"):
        parse_config("server:\n  log_format: xml\n")


def test_a_repeated_warning_is_held_back_and_counted() -> None:
    now = [100.0]
    throttle = Throttle(window=10.0, clock=lambda: now[0])
    assert [throttle.allow("flood") for _ in range(5)] == [0, None, None, None, None]
    assert throttle.allow("other") == 0
    now[0] += 10.0
    assert throttle.allow("flood") == 4
    assert throttle.allow("flood") is None


def test_an_access_stamp_from_the_requests_own_clock_reading_is_the_wall_time() -> None:
    clock = _Clock()
    perf, wall = time.perf_counter(), time.time()
    from_perf, from_wall = clock.stamp_perf(perf), clock.stamp(wall)
    assert from_perf[:19] == from_wall[:19] or abs(wall % 1) > 0.99  # same second (unless on its edge)
    assert abs(int(from_perf[20:23]) - int(from_wall[20:23])) % 999 <= 5


def test_a_field_remembered_as_safe_is_never_an_unsafe_one() -> None:
    assert field_value("bench-model") == field_value("bench-model") == "bench-model"
    assert field_value("a b\n") == "a\\x20b\\n"
    assert field_value("a b\n") == "a\\x20b\\n"  # asked twice: still escaped, not remembered
    assert field_value("") == "-"
