"""The `crossroute` command as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from crossroute import __version__
from crossroute.config import ConfigError, parse_config
from crossroute.defaults import discover_providers
from tests.gateway_runner import free_port

CLI = [sys.executable, "-m", "crossroute.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=30, env=env)


def test_version() -> None:
    assert run("--version").stdout.strip() == f"crossroute {__version__}"


def test_models_lists_names_aliases_and_kinds(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("providers:\n  - name: openrouter\n    kind: openai\n    api_keys: [k]\n"
                      "    models: [deepseek/deepseek-chat, {name: qwen/qwen3-coder, alias: coder}]\n")
    out = run("models", "--config", str(config)).stdout
    assert "openrouter/deepseek/deepseek-chat  [openai]" in out
    assert "openrouter/qwen/qwen3-coder  (alias: coder)  [openai]" in out


def test_bad_config_names_the_key_and_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("server:\n  port: 8317\nproviders:\n  - name: a\n    kind: openai\n    api_keys: [k]\n"
                      "  - name: b\n    kind: telepathy\n")
    result = run("serve", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}:8: providers[1].kind: unknown provider kind 'telepathy'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("text,fragment", [
    ("server: {port: seventy}\n", "server.port"),
    ("providers:\n  - {name: x, kind: openai, base_url: http://h/v1, colour: red}\n", "providers[0].colour: unknown key"),
    ("providers:\n  - {name: x, kind: anthropic, api_keys: [a]}\n  - {name: x, kind: gemini}\n", "two providers are named 'x'"),
    ("providers: [\n", "not valid YAML"),
    ('providers:\n  - {name: x, kind: openai, api_keys: ["k\\r\\nx-evil: 1"]}\n', "providers[0].api_keys: an API key"),
    ('providers:\n  - {name: x, kind: openai, headers: {x-title: "a\\nb"}}\n', "header 'x-title' holds a control"),
    ('providers:\n  - {name: x, kind: openai, headers: {"bad name": v}}\n', "'bad name' is not a valid HTTP header"),
    ("providers:\n  - {name: x, kind: openai, models: [m]}\nrouting:\n  fallbacks: {m: [typo-model]}\n",
     "c.yaml:4: routing: fallbacks: no provider serves 'typo-model'"),
])
def test_config_errors(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert fragment in str(caught.value)


def test_keys_from_environment_in_config() -> None:
    os.environ["CROSSROUTE_TEST_KEY"] = "sk-from-env"
    config = parse_config("providers:\n  - {name: deepseek, kind: openai, api_keys: ['${CROSSROUTE_TEST_KEY}']}\n")
    assert config.providers[0].api_keys == ["sk-from-env"]
    assert config.providers[0].base_url == "https://api.deepseek.com/v1"


def test_discovery_maps_env_vars_to_presets() -> None:
    found = discover_providers({"OPENROUTER_API_KEY": "a", "GEMINI_API_KEY": "b", "UNRELATED": "c"})
    assert {(p.name, p.kind) for p in found} == {("openrouter", "openai"), ("gemini", "gemini")}


def test_refuses_remote_bind_without_keys(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("server: {host: 0.0.0.0}\n")
    result = run("serve", "--config", str(config))
    assert result.returncode == 2
    assert "api_keys is empty" in result.stderr


def wait_until_healthy(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "gateway did not come up"
        time.sleep(0.1)


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def test_serve_without_config_starts_on_defaults(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"DEEPSEEK_API_KEY": "sk-test-deepseek", "CROSSROUTE_HOME": str(tmp_path)})
    process = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_healthy(port)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert "deepseek/deepseek-chat" in {m["id"] for m in models["data"]}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "deepseek (openai, 1 key(s))" in stderr
    assert "sk-test-deepseek" not in stderr


def test_serve_workers_share_the_port_and_come_back(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(f"server: {{port: {port}}}\nstate: {{path: {tmp_path / 's.db'}}}\n")
    process = subprocess.Popen([*CLI, "serve", "--config", str(config), "--workers", "2"], stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_until_healthy(port)
        workers = children_of(process.pid)
        assert len(workers) == 2
        os.kill(min(workers), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while len(children_of(process.pid) - {min(workers)}) < 2:
            assert time.monotonic() < deadline, "the supervisor did not start another worker"
            time.sleep(0.1)
        assert all(httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200 for _ in range(20))
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "2 workers" in stderr
    assert not children_of(process.pid)
