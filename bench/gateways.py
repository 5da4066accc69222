"""The gateways under test: crossroute (1 and 2 workers) and the peers, each configured against the
same fake upstreams. A gateway says which (client format, upstream) pairs it can serve, the model
name a client must send for an upstream, and how to start it; peers come from bench/peers/install.sh.

Upstreams are named by body: chat-json, chat-sse, anthropic-json, anthropic-sse, responses-sse,
gemini-sse (nginx), chat-8acct (nginx's Chat JSON behind 8 keys, one of them cooling) and slow (the
slow-drip Chat SSE server).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procs

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench"          # the client key every gateway is configured with (9router mints its own)
UPSTREAM_KEY = "sk-upstream"
ACCOUNT_KEYS = [f"sk-upstream-{n}" for n in range(1, 9)]  # chat-8acct's 8 accounts; the fake cools the last
KIND = {"chat-json": "chat", "chat-sse": "chat", "chat-8acct": "chat", "slow": "chat", "anthropic-json": "anthropic",
        "anthropic-sse": "anthropic", "responses-sse": "responses", "gemini-sse": "gemini"}


@dataclass
class Gateway:
    name: str
    port: int
    key: str = KEY
    proc: subprocess.Popen[bytes] | None = None
    skip: str | None = None          # why it is not measured, for the report
    version: str = ""
    pairs: set[tuple[str, str]] = field(default_factory=set)   # (client format, upstream kind)

    def can(self, client: str, upstream: str) -> bool:
        return (client, KIND[upstream]) in self.pairs

    def model(self, upstream: str) -> str:
        return f"bench-{upstream}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, run: Path, ports: dict[str, int]) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc)


ALL_PAIRS = {(c, u) for c in ("chat", "anthropic", "responses", "gemini") for u in ("chat", "anthropic", "responses", "gemini")}


class Crossroute(Gateway):
    def __init__(self, port: int, workers: int = 1) -> None:
        super().__init__(name="crossroute" if workers == 1 else f"crossroute --workers {workers}", port=port,
                         pairs=set(ALL_PAIRS))
        self.workers = workers

    def start(self, run: Path, ports: dict[str, int]) -> None:
        kinds = {"chat": "openai", "anthropic": "anthropic", "responses": "openai-responses", "gemini": "gemini"}
        providers = []
        for up, port in ports.items():
            kind = KIND[up]
            base = f"http://127.0.0.1:{port}" + ("/v1" if kind in ("chat", "responses") else "")
            provider = {"name": f"up-{up}", "kind": kinds[kind], "base_url": base, "api_keys": [UPSTREAM_KEY],
                        "models": [self.model(up)]}
            if up == "chat-8acct":
                provider.update(api_keys=ACCOUNT_KEYS, strategy="round-robin")
            providers.append(provider)
        state = run / f"crossroute-{self.workers}-state"  # its own: account state (cooldowns) is kept beside it
        state.mkdir(exist_ok=True)
        config = {"server": {"host": "127.0.0.1", "port": self.port, "api_keys": [KEY]},
                  "state": {"path": str(state / "state.sqlite3"), "auth_dir": str(state / "auth")},
                  "providers": providers}
        path = run / f"crossroute-{self.workers}.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        exe = ROOT / ".venv" / "bin" / "crossroute"
        self.version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.strip()
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "crossroute"],
                               capture_output=True, text=True)
        if commit.returncode == 0:
            self.version += f" ({commit.stdout.strip()}{', with uncommitted changes' if dirty.stdout.strip() else ''})"
        self.proc = procs.start([str(exe), "serve", "--config", str(path), "--workers", str(self.workers)],
                                run / f"crossroute-{self.workers}.log")
        procs.wait_port(self.port, 60, self.proc)


class Direct(Gateway):
    """nginx itself, answering each client format's own body: the limit."""

    def __init__(self) -> None:
        super().__init__(name="direct (nginx)", port=0, pairs={(c, c) for c in ("chat", "anthropic", "responses")})


class NginxProxy(Gateway):
    """A bare nginx proxy_pass hop (its own nginx, one worker, keepalive upstream) to the fake's Chat JSON
    port: the floor for any proxy on this machine."""

    def __init__(self, port: int) -> None:
        super().__init__(name="nginx proxy_pass", port=port, pairs={("chat", "chat")})

    def can(self, client: str, upstream: str) -> bool:
        return client == "chat" and upstream == "chat-json"

    def start(self, run: Path, ports: dict[str, int]) -> None:
        prefix = run / "nginx-proxy"
        prefix.mkdir(exist_ok=True)
        conf = ((Path(__file__).resolve().parent / "nginx" / "proxy.conf.tmpl").read_text()
                .replace("@USER@", "user root;" if os.geteuid() == 0 else "").replace("@PREFIX@", str(prefix))
                .replace("@PORT@", str(self.port)).replace("@UPSTREAM@", str(ports["chat-json"])))
        (prefix / "nginx.conf").write_text(conf)
        out = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
        self.version = (out.stdout + out.stderr).strip().replace("nginx version: nginx/", "nginx ") + " (proxy_pass)"
        self.proc = procs.start(["nginx", "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-g", "daemon off;"],
                                run / "nginx-proxy.log")
        procs.wait_port(self.port, 10, self.proc)


class LiteLLM(Gateway):
    MODELS = {"chat": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5-20250929",
              "gemini": "gemini/gemini-2.5-flash"}

    def __init__(self, port: int, cache: Path) -> None:
        super().__init__(name="LiteLLM", port=port, pairs={("chat", "chat"), ("anthropic", "chat"),
                                                           ("responses", "chat"), ("chat", "anthropic"),
                                                           ("chat", "gemini")})
        self.venv = cache / "litellm"

    def start(self, run: Path, ports: dict[str, int]) -> None:
        lines = ["model_list:"]
        for up, port in ports.items():
            kind = KIND[up]
            if kind not in self.MODELS:
                continue
            base = f"http://127.0.0.1:{port}" + ("/v1" if kind == "chat" else "")
            lines += [f"  - model_name: {self.model(up)}", "    litellm_params:",
                      f"      model: {self.MODELS[kind]}", f"      api_base: {base}", f"      api_key: {UPSTREAM_KEY}"]
            if kind == "chat":  # Responses clients: bridge to the upstream's Chat Completions, not its /responses
                lines.append("      use_chat_completions_api: true")
        lines += ["litellm_settings:", "  drop_params: true", "  telemetry: false", "  set_verbose: false",
                  "general_settings:", f"  master_key: {KEY}", "  disable_spend_logs: true",
                  "  disable_error_logs: true"]
        path = run / "litellm.yaml"
        path.write_text("\n".join(lines) + "\n")
        env = {"LITELLM_MASTER_KEY": KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
               "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
               "NO_DOCS": "True", "DISABLE_ADMIN_UI": "True"}
        os.environ.pop("DATABASE_URL", None)
        self.version = "litellm " + _pip_version(self.venv, "litellm")
        self.proc = procs.start([str(self.venv / "bin" / "litellm"), "--config", str(path), "--host", "127.0.0.1",
                                 "--port", str(self.port), "--num_workers", "1"], run / "litellm.log", env=env)
        procs.wait_port(self.port, 180, self.proc)


class ClaudeCodeRouter(Gateway):
    """Routes only Anthropic /v1/messages; a model "provider,model" picks the provider (as Claude Code's
    /model command does with it)."""

    def __init__(self, port: int, cache: Path) -> None:
        super().__init__(name="claude-code-router", port=port, pairs={("anthropic", "chat")})
        self.pkg = cache / "ccr" / "node_modules" / "@musistudio" / "claude-code-router"

    def model(self, upstream: str) -> str:
        return f"up{upstream.replace('-', '')},gpt-4o-mini"

    def start(self, run: Path, ports: dict[str, int]) -> None:
        home = run / "ccr-home"
        (home / ".claude-code-router").mkdir(parents=True, exist_ok=True)
        providers = [{"name": f"up{up.replace('-', '')}", "api_base_url": f"http://127.0.0.1:{port}/v1/chat/completions",
                      "api_key": UPSTREAM_KEY, "models": ["gpt-4o-mini"]}
                     for up, port in ports.items() if KIND[up] == "chat"]
        config = {"HOST": "127.0.0.1", "PORT": self.port, "APIKEY": KEY, "LOG": False, "LOG_LEVEL": "warn",
                  "API_TIMEOUT_MS": 600000, "NON_INTERACTIVE_MODE": True, "Providers": providers,
                  "Router": {"default": f"{providers[0]['name']},gpt-4o-mini"}}
        (home / ".claude-code-router" / "config.json").write_text(json.dumps(config, indent=1))
        self.version = "claude-code-router " + json.loads((self.pkg / "package.json").read_text())["version"]
        self.proc = procs.start(["node", str(self.pkg / "dist" / "cli.js"), "start"], run / "ccr.log",
                                env={"HOME": str(home), "SERVICE_PORT": str(self.port)}, cwd=home)
        procs.wait_port(self.port, 60, self.proc)


class NineRouter(Gateway):
    """Configured over its HTTP API: log in, one OpenAI-compatible provider node per upstream (its prefix
    is the model's prefix), its connection, and a client key."""

    def __init__(self, port: int, cache: Path) -> None:
        super().__init__(name="9router", port=port, pairs={("chat", "chat"), ("anthropic", "chat")})
        self.pkg = cache / "9router" / "node_modules" / "9router"

    def model(self, upstream: str) -> str:
        return f"{upstream.replace('-', '')}/gpt-4o-mini"

    def start(self, run: Path, ports: dict[str, int]) -> None:
        data = run / "9router-data"
        data.mkdir(parents=True, exist_ok=True)
        runtime = data / "runtime"
        if not runtime.exists():
            runtime.symlink_to(self.pkg / "data" / "runtime")
        app = self.pkg / "app"
        env = {"DATA_DIR": str(data), "PORT": str(self.port), "HOSTNAME": "127.0.0.1", "NODE_ENV": "production",
               "NODE_PATH": f"{runtime / 'node_modules'}:{app / 'node_modules'}", "NEXT_TELEMETRY_DISABLED": "1"}
        self.version = "9router " + json.loads((self.pkg / "package.json").read_text())["version"]
        self.proc = procs.start(["node", "--dns-result-order=ipv4first", "--max-old-space-size=6144",
                                 "custom-server.js"], run / "9router.log", env=env, cwd=app)
        procs.wait_port(self.port, 60, self.proc)
        api = _Api(self.url)
        api.call("/api/auth/login", {"password": "123456"})
        for up, port in ports.items():
            if KIND[up] != "chat":
                continue
            node = api.call("/api/provider-nodes", {"name": f"up-{up}", "prefix": up.replace("-", ""), "apiType": "chat",
                                                    "baseUrl": f"http://127.0.0.1:{port}/v1", "type": "openai-compatible"})
            api.call("/api/providers", {"provider": node["node"]["id"], "apiKey": UPSTREAM_KEY, "name": f"up-{up}"})
        self.key = api.call("/api/keys", {"name": "bench"})["key"]


class _Api:
    def __init__(self, base: str) -> None:
        self.base, self.cookie = base, ""

    def call(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", "cookie": self.cookie})
        for attempt in range(20):
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    cookies = resp.headers.get_all("set-cookie") or []
                    if cookies:
                        self.cookie = "; ".join(c.split(";", 1)[0] for c in cookies)
                    return json.loads(resp.read())
            except OSError:
                if attempt == 19:
                    raise
                time.sleep(0.5)


def _pip_version(venv: Path, name: str) -> str:
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          f"import importlib.metadata as m; print(m.version({name!r}))"], capture_output=True, text=True)
    return out.stdout.strip()


def peers(cache: Path, ports: dict[str, int]) -> list[Gateway]:
    """The peers, each marked skipped with the reason when bench/peers/install.sh could not install it."""
    found: list[Gateway] = [LiteLLM(ports["litellm"], cache), ClaudeCodeRouter(ports["ccr"], cache),
                            NineRouter(ports["9router"], cache)]
    for gw, part in zip(found, ("litellm", "ccr", "9router"), strict=True):
        failed = cache / f"{part}.failed"
        if failed.exists():
            gw.skip = "install failed: " + " / ".join(failed.read_text().strip().splitlines()[-3:])
        elif not any(cache.glob(f"{part}.installed-*")):
            gw.skip = "not installed (BENCH_PEERS excludes it or install.sh was not run)"
    return found

