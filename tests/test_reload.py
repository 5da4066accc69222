"""Reloading the config of a running `crossroute serve` (SIGHUP or an edit of
the file): no request is lost, in-flight ones finish on the old config and new
ones get the new; a bad file is refused and the old config keeps serving; a
replaced worker starts from the latest config; nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.gateway_runner import free_port
from tests.test_cli import CLI, children_of, wait_until_healthy
from tests.test_shutdown import gone, kill_leftovers, wait_for

_PIECES = 4  # content chunks in a streamed answer


def answer_text(marker: str) -> str:
    return "".join(f"{marker}-{i} " for i in range(_PIECES))


# ---------------------------------------------------------------- a slow upstream


@dataclass
class Seen:
    key: str
    model: str
    connection: _Handler


class SlowUpstream:
    """OpenAI Chat, answering slowly (a pause between streamed chunks, or before a
    whole answer). It records the key and model of each request by its marker (the
    last message's text); a marker starting with "hold" stops its stream after the
    first chunk until `release` is set."""

    def __init__(self, pause: float = 0.05) -> None:
        self.pause = pause
        self.seen: dict[str, Seen] = {}
        self.release = threading.Event()
        self.server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.server.upstream = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def key_of(self, marker: str) -> str:
        return self.seen[marker].key

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a held stream whose gateway went away: nothing to report


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    closed = False  # set once the client (the gateway's upstream pool) has closed this connection

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def finish(self) -> None:
        super().finish()
        self.closed = True

    def do_POST(self) -> None:
        upstream: SlowUpstream = self.server.upstream  # type: ignore[attr-defined]
        body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
        marker = body["messages"][-1]["content"]
        upstream.seen[marker] = Seen(self.headers.get("authorization", "").removeprefix("Bearer "), body["model"], self)
        if body.get("stream"):
            self._stream(upstream, marker)
        else:
            time.sleep(upstream.pause * _PIECES)
            answer = orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": answer_text(marker)}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    def _stream(self, upstream: SlowUpstream, marker: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for i in range(_PIECES):
            self._event({"role": "assistant", "content": f"{marker}-{i} "} if i == 0 else {"content": f"{marker}-{i} "})
            if i == 0 and marker.startswith("hold"):
                upstream.release.wait(30)
            time.sleep(upstream.pause)
        self._event({}, finish="stop")
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _event(self, delta: dict[str, Any], finish: str | None = None) -> None:
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m-real",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        self._chunk(b"data: " + orjson.dumps(chunk) + b"\n\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


@pytest.fixture
def upstream() -> Iterator[SlowUpstream]:
    server = SlowUpstream()
    yield server
    server.close()


# ---------------------------------------------------------------- the gateway process


def config_text(port: int, state: Path, upstream_port: int, key: str, alias: str | None = None) -> str:
    model = "{name: m, upstream: m-real" + (f", alias: {alias}" if alias else "") + "}"
    return (f"server: {{port: {port}, shutdown_grace_seconds: 1}}\n"
            f"state: {{path: '{state}'}}\n"
            "providers:\n"
            "  - name: up\n"
            "    kind: openai\n"
            f"    base_url: 'http://127.0.0.1:{upstream_port}/v1'\n"
            f"    api_keys: [{key}]\n"
            f"    models: [{model}]\n")


def replace_file(path: Path, text: str) -> None:
    """As an editor saves: a new file renamed over the old one."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(text)
    os.replace(temporary, path)


class Gateway:
    """`crossroute serve --workers N` on a config file in tmp_path, its log collected as it is written."""

    def __init__(self, tmp_path: Path, upstream: SlowUpstream, workers: int = 2) -> None:
        self.port = free_port()
        self.state = tmp_path / "state.sqlite3"
        self.config = tmp_path / "crossroute.yaml"
        self.upstream = upstream
        self.config.write_text(self.text("key-one"))
        self.process = subprocess.Popen([*CLI, "serve", "--config", str(self.config), "--workers", str(workers),
                                         "--log-level", "info", "--no-access-log"],
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()
        self.known: set[int] = set()  # every worker seen, for the orphan check
        wait_until_healthy(self.port)
        self.workers = self.children()

    def text(self, key: str, alias: str | None = None, upstream_port: int | None = None) -> str:
        return config_text(self.port, self.state, upstream_port or self.upstream.port, key, alias)

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def children(self) -> set[int]:
        found = children_of(self.process.pid)
        self.known |= found
        return found

    def log_since(self, mark: int) -> str:
        return "".join(self.lines[mark:])

    def wait_for_log(self, fragment: str, mark: int, seconds: float = 10) -> None:
        wait_for(lambda: fragment in self.log_since(mark), seconds, f"no {fragment!r} in the log")

    def reload_by_sighup(self, text: str) -> None:
        """The config file rewritten, SIGHUP sent, and back once every worker has logged the reload."""
        mark = len(self.lines)
        replace_file(self.config, text)
        self.process.send_signal(signal.SIGHUP)
        self.wait_reloaded(mark)

    def wait_reloaded(self, mark: int, seconds: float = 10) -> None:
        """Until every worker (or the one process) has logged a reload since `mark`."""
        if not self.workers:
            self.wait_for_log("config reloaded from", mark, seconds)
            return
        wait_for(lambda: all(f"(worker {pid})" in self.log_since(mark) for pid in self.workers), seconds,
                 "not every worker reloaded")

    def chat(self, marker: str, model: str = "m", stream: bool = False, client: httpx.Client | None = None) -> str:
        """One request; the text its answer carried (the whole answer is checked to be there)."""
        body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": marker}]}
        url = f"http://127.0.0.1:{self.port}/v1/chat/completions"
        http = client or httpx.Client(timeout=30)
        try:
            if not stream:
                reply = http.post(url, json=body)
                assert reply.status_code == 200, reply.text
                return str(reply.json()["choices"][0]["message"]["content"])
            with http.stream("POST", url, json=body) as reply:
                assert reply.status_code == 200, reply.read()
                events = reply.read().decode()
            assert events.rstrip().endswith("data: [DONE]"), events
            return "".join(orjson.loads(line[6:])["choices"][0]["delta"].get("content", "")
                           for line in events.splitlines() if line.startswith("data: {"))
        finally:
            if client is None:
                http.close()

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        finally:
            self.process.kill()
            self.children()
            kill_leftovers(self.known)
        self.reader.join(timeout=5)
        return self.process.returncode, "".join(self.lines)


@pytest.fixture
def start(tmp_path: Path, upstream: SlowUpstream) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def start_gateway(workers: int = 2) -> Gateway:
        gateway = Gateway(tmp_path, upstream, workers)
        started.append(gateway)
        return gateway

    yield start_gateway
    for gateway in started:
        gateway.stop()


# ---------------------------------------------------------------- load


@dataclass
class Outcome:
    marker: str
    started: float
    ended: float
    problem: str | None  # None: a 200 with the whole answer


class Load:
    """Client threads sending requests back to back (every other one streamed), each on its own keep-alive connection."""

    def __init__(self, gateway: Gateway, threads: int = 4, limit: int = 300) -> None:
        self.gateway = gateway
        self.limit = limit
        self.outcomes: list[Outcome] = []
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(threads)]
        for thread in self.threads:
            thread.start()

    def _send(self, number: int) -> None:
        with httpx.Client(timeout=30) as client:
            for i in range(self.limit):
                if self.stopped.is_set():
                    return
                marker = f"load{number}-{i}"
                started = time.monotonic()
                try:
                    text = self.gateway.chat(marker, stream=i % 2 == 0, client=client)
                    problem = None if text == answer_text(marker) else f"incomplete answer {text!r}"
                except (AssertionError, httpx.HTTPError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                self.outcomes.append(Outcome(marker, started, time.monotonic(), problem))

    def started_after(self, moment: float) -> list[Outcome]:
        return [o for o in self.outcomes if o.started > moment]

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in self.threads), "a client thread is stuck"


# ---------------------------------------------------------------- tests


def test_a_reload_under_load_loses_no_request_and_new_requests_see_the_new_config(
        start: Callable[..., Gateway], upstream: SlowUpstream) -> None:
    upstream.pause = 0.25  # an answer takes about a second: some are sure to be in flight during the reload
    gateway = start(workers=2)
    load = Load(gateway)
    try:
        wait_for(lambda: len(load.outcomes) >= 8, 20, "the load did not start")
        mark, asked = len(gateway.lines), time.monotonic()
        replace_file(gateway.config, gateway.text("key-two", alias="fast"))
        gateway.process.send_signal(signal.SIGHUP)
        gateway.wait_reloaded(mark)
        reloaded = time.monotonic()
        wait_for(lambda: len(load.started_after(reloaded)) >= 8, 20, "the load stopped after the reload")
    finally:
        load.stop()
    assert [o for o in load.outcomes if o.problem] == []
    across = [o for o in load.outcomes if o.started < asked and o.ended > reloaded]
    assert across, "no request was in flight during the reload"
    assert {upstream.key_of(o.marker) for o in across} == {"key-one"}  # finished on the config they began with
    assert {upstream.key_of(o.marker) for o in load.started_after(reloaded)} == {"key-two"}
    for i in range(4):
        assert gateway.chat(f"alias-{i}", model="fast", stream=i % 2 == 0) == answer_text(f"alias-{i}")
        assert upstream.seen[f"alias-{i}"].model == "m-real"


@pytest.mark.parametrize("workers", [1, 2])
def test_an_edit_of_the_file_is_applied_without_sighup(start: Callable[..., Gateway], upstream: SlowUpstream,
                                                       workers: int) -> None:
    gateway = start(workers=workers)
    gateway.chat("before")
    mark = len(gateway.lines)
    elsewhere = free_port()
    replace_file(gateway.config, gateway.text("key-two", alias="fast").replace(f"port: {gateway.port}",
                                                                               f"port: {elsewhere}"))
    gateway.wait_reloaded(mark)
    assert gateway.chat("after", model="fast") == answer_text("after")
    assert (upstream.key_of("before"), upstream.key_of("after")) == ("key-one", "key-two")
    # a new port needs a restart: said once, and the gateway stays where it is
    restart = f"server.port changed from {gateway.port} to {elsewhere}, which needs a restart"
    assert gateway.log_since(mark).count(restart) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{elsewhere}/health")


def test_an_invalid_edit_is_refused_with_file_and_line_and_the_old_config_keeps_serving(
        start: Callable[..., Gateway], upstream: SlowUpstream) -> None:
    gateway = start(workers=2)
    mark = len(gateway.lines)
    broken = gateway.text("sk-secret-never-logged", alias="fast").replace("kind: openai", "kind: nosuch")
    replace_file(gateway.config, broken)  # the watcher reads it
    where = f"{gateway.config}:5: providers[0].kind: unknown provider kind 'nosuch'"
    gateway.wait_for_log(where, mark)
    gateway.process.send_signal(signal.SIGHUP)  # and so does a SIGHUP
    wait_for(lambda: gateway.log_since(mark).count(where) >= 2, 10, "SIGHUP did not read the file again")
    assert gateway.process.poll() is None and gateway.children() == gateway.workers
    for i in range(4):
        assert gateway.chat(f"old-{i}", stream=i % 2 == 0) == answer_text(f"old-{i}")
        assert upstream.key_of(f"old-{i}") == "key-one"
    with pytest.raises(AssertionError, match="model_not_found"):
        gateway.chat("no-alias-yet", model="fast")
    replace_file(gateway.config, gateway.text("key-two", alias="fast"))  # fixed: taken as usual
    gateway.wait_reloaded(mark)
    assert gateway.chat("fixed", model="fast") == answer_text("fixed")
    code, log = gateway.stop()
    assert code == 0
    assert "sk-secret-never-logged" not in log and "Traceback" not in log


def test_a_stream_in_flight_across_a_reload_finishes_on_the_old_config(
        start: Callable[..., Gateway], upstream: SlowUpstream) -> None:
    gateway = start(workers=2)
    other = SlowUpstream()
    try:
        held: dict[str, str] = {}
        client = threading.Thread(target=lambda: held.update(text=gateway.chat("hold-1", stream=True)), daemon=True)
        client.start()
        wait_for(lambda: "hold-1" in upstream.seen, 10, "the stream did not reach the upstream")
        gateway.reload_by_sighup(gateway.text("key-two", upstream_port=other.port))
        assert gateway.chat("new") == answer_text("new")
        assert "new" in other.seen and "new" not in upstream.seen  # the new config's upstream, while the stream is held
        upstream.release.set()
        client.join(timeout=20)
        assert held.get("text") == answer_text("hold-1")
        assert upstream.key_of("hold-1") == "key-one"
        # the old config's gateway stops once its stream has ended: its upstream connection is closed
        wait_for(lambda: upstream.seen["hold-1"].connection.closed, 10, "the replaced gateway was not stopped")
    finally:
        other.close()


def test_a_worker_that_dies_after_a_reload_comes_back_with_the_new_config(
        start: Callable[..., Gateway], upstream: SlowUpstream) -> None:
    gateway = start(workers=2)
    gateway.reload_by_sighup(gateway.text("key-two", alias="fast"))
    for pid in gateway.workers:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(gateway.children() - gateway.workers) == 2, 15, "the workers were not replaced")
    wait_until_healthy(gateway.port)
    for i in range(6):
        assert gateway.chat(f"replaced-{i}", model="fast", stream=i % 2 == 0) == answer_text(f"replaced-{i}")
        assert upstream.key_of(f"replaced-{i}") == "key-two"


def test_no_process_is_left_after_sighup_a_killed_worker_and_sigterm_with_sighup_during_the_drain(
        start: Callable[..., Gateway], upstream: SlowUpstream) -> None:
    gateway = start(workers=2)
    gateway.reload_by_sighup(gateway.text("key-two", alias="fast"))
    os.kill(next(iter(gateway.workers)), signal.SIGKILL)
    wait_for(lambda: len(gateway.children() - gateway.workers) == 1, 15, "the worker was not replaced")
    held: dict[str, str] = {}
    client = threading.Thread(target=lambda: held.update(events=_stream_events(gateway, "hold-2")), daemon=True)
    client.start()
    wait_for(lambda: "hold-2" in upstream.seen, 10, "the stream did not reach the upstream")
    gateway.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    gateway.process.send_signal(signal.SIGHUP)  # during the drain: ignored, not a reload, not a death
    code, log = gateway.stop()
    client.join(timeout=10)
    assert code == 0
    assert "SIGHUP while shutting down: ignored" in log
    events = held.get("events", "")  # the held stream, ended by the shutdown in its format after the grace period
    assert "the gateway is shutting down" in events and events.rstrip().endswith("data: [DONE]")
    assert len(gateway.known) == 3 and all(gone(pid) for pid in gateway.known)
    assert not _processes_mentioning(str(gateway.config))


def _stream_events(gateway: Gateway, marker: str) -> str:
    body = {"model": "fast", "stream": True, "messages": [{"role": "user", "content": marker}]}
    with httpx.stream("POST", f"http://127.0.0.1:{gateway.port}/v1/chat/completions", json=body, timeout=30) as reply:
        return reply.read().decode()


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and not gone(int(entry.name)):
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_reloads_keep_the_response_store_and_its_one_connection(start: Callable[..., Gateway]) -> None:
    gateway = start(workers=1)
    url = f"http://127.0.0.1:{gateway.port}/v1/responses"
    first = httpx.post(url, json={"model": "m", "input": "stored-0"}, timeout=30)
    assert first.status_code == 200, first.text
    previous = first.json()["id"]
    for i in range(1, 6):
        gateway.reload_by_sighup(gateway.text(f"key-{i}", alias=f"alias-{i}"))
        reply = httpx.post(url, json={"model": f"alias-{i}", "input": f"stored-{i}", "previous_response_id": previous},
                           timeout=30)
        assert reply.status_code == 200, reply.text  # the chain stored before the reload is found
        previous = reply.json()["id"]
    assert httpx.get(f"{url}/{first.json()['id']}", timeout=30).status_code == 200
    assert _open_files(gateway.process.pid).count(str(gateway.state)) == 1  # one SQLite connection, handed on


def _open_files(pid: int) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.append(os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
    return found
