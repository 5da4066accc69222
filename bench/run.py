"""The benchmark: crossroute beside LiteLLM, claude-code-router and 9router on one fake upstream.

    make bench                      # the full run (~35 min), rewrites docs/benchmarks.md and .png
    BENCH_QUICK=1 make bench        # a few minutes: one round, c=32 only, short runs, 200 open streams, 1-min soak

Environment knobs (defaults in brackets; BENCH_QUICK changes them):
    BENCH_DURATION [5]     seconds per wrk run (c=256 runs of slow gateways are stretched, see below)
    BENCH_WARMUP [5]       seconds of wrk at c=32 per gateway and workload before measuring
    BENCH_ROUNDS [2]       interleaved rounds (A B C, A B C)
    BENCH_CONC [32,1,256]  concurrencies, in the order run (c=32 first: it sizes the c=256 runs)
    BENCH_STREAMS [1000]   open slow streams in the memory test (0 skips it)
    BENCH_DRIP [10]        seconds the slow upstream takes for one stream
    BENCH_SOAK [600]       seconds of mixed load on crossroute with its RSS sampled every second (quick: 60; 0 skips it)
    BENCH_PEERS [litellm,ccr,9router]   peers to install and measure (empty: none)
    BENCH_WORKLOADS        ids to run (default: all), e.g. chat-json,anthropic-sse; `streams` and `soak` select
                           the open-streams test and the soak
    BENCH_OUT [docs]       where benchmarks.md / benchmarks.png go (a quick run writes to bench/out/)
Runs under the bench cache's own venv (bench/peers/install.sh tools), which has the SDKs that check
the answers and matplotlib for the chart.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bodies  # noqa: E402
import gateways  # noqa: E402
import openstreams  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import soak  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("CROSSROUTE_BENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                                   Path.home() / ".cache") / "crossroute-bench")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def _env(name: str, full: str, quick: str) -> str:
    return os.environ.get(name) or (quick if QUICK else full)


DURATION = float(_env("BENCH_DURATION", "5", "3"))
WARMUP = float(_env("BENCH_WARMUP", "5", "2"))
ROUNDS = int(_env("BENCH_ROUNDS", "2", "1"))
CONCS = [int(c) for c in _env("BENCH_CONC", "32,1,256", "32").split(",")]
STREAMS = int(_env("BENCH_STREAMS", "1000", "200"))
DRIP = float(_env("BENCH_DRIP", "10", "10"))
SOAK = float(_env("BENCH_SOAK", "600", "60"))
PEERS = [p for p in os.environ.get("BENCH_PEERS", "litellm,ccr,9router").split(",") if p]
ONLY = [w for w in os.environ.get("BENCH_WORKLOADS", "").split(",") if w]
OUT = Path(os.environ.get("BENCH_OUT") or (HERE / "out" if QUICK else ROOT / "docs"))
MAX_STRETCH = 20.0  # longest c=256 run, seconds
SOAK_CONC, SOAK_RUN = 32, 10.0  # the soak's wrk runs: concurrency, seconds each

NGINX_PORTS = {"chat-json": 18401, "chat-sse": 18402, "anthropic-json": 18403, "anthropic-sse": 18404,
               "responses-sse": 18405, "gemini-sse": 18406}
ACCOUNTS_PORT = 18407  # chat-json-8acct: the Chat JSON body behind 8 keys, the last one cooling (nginx/accounts.tmpl)
SLOW_PORT = 18410
GATEWAY_PORTS = {"crossroute": 18317, "crossroute2": 18318, "litellm": 18320, "ccr": 18321, "9router": 18322,
                 "proxy": 18409}


@dataclass
class Workload:
    id: str
    title: str
    client: str          # chat | anthropic | responses
    stream: bool
    upstream: str        # an nginx body name
    group: str
    accounts: bool = False   # through chat-8acct's 8 accounts: crossroute only, its spread is counted

    @property
    def direct_body(self) -> str:
        return f"{self.client}-{'sse' if self.stream else 'json'}"


WORKLOADS = [
    Workload("chat-json", "Chat client -> Chat upstream, non-stream (passthrough)", "chat", False, "chat-json", "1"),
    Workload("chat-json-8acct", "Chat client -> Chat upstream, non-stream (passthrough), 8 accounts round-robin, "
             "one cooling", "chat", False, "chat-8acct", "1", accounts=True),
    Workload("chat-sse", "Chat client -> Chat upstream, stream (passthrough)", "chat", True, "chat-sse", "1"),
    Workload("anthropic-json", "Anthropic client -> Chat upstream, non-stream (Claude Code)", "anthropic", False,
             "chat-json", "2"),
    Workload("anthropic-sse", "Anthropic client -> Chat upstream, stream (Claude Code)", "anthropic", True,
             "chat-sse", "2"),
    Workload("responses-sse", "Responses client -> Chat upstream, stream (Codex)", "responses", True, "chat-sse", "3"),
    Workload("chat-to-anthropic-sse", "Chat client -> Anthropic upstream, stream", "chat", True, "anthropic-sse", "4"),
    Workload("chat-to-gemini-sse", "Chat client -> Gemini upstream, stream", "chat", True, "gemini-sse", "4"),
]
HEADERS = {"anthropic": {"anthropic-version": "2023-06-01"}}


@dataclass
class Run:
    workload: str
    gateway: str
    conc: int
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_req: float
    peak_rss_mb: float
    errors: int
    requests: int
    duration_s: float
    detail: dict[str, Any] = field(default_factory=dict)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- setup

def start_nginx(run: Path, body_dir: Path) -> subprocess.Popen[bytes]:
    server = (HERE / "nginx" / "server.tmpl").read_text()
    servers = "".join(
        server.replace("@NAME@", name).replace("@PORT@", str(port)).replace("@BODIES@", str(body_dir))
        .replace("@TYPE@", bodies.UPSTREAM[name][0]) for name, port in NGINX_PORTS.items())
    accounts = "".join(f'        "Bearer {key}" {n};\n' for n, key in enumerate(gateways.ACCOUNT_KEYS, 1))
    servers += ((HERE / "nginx" / "accounts.tmpl").read_text().replace("@ACCOUNTS@", accounts.rstrip("\n"))
                .replace("@COOLING@", str(len(gateways.ACCOUNT_KEYS))).replace("@PORT@", str(ACCOUNTS_PORT))
                .replace("@BODIES@", str(body_dir)).replace("@PREFIX@", str(run / "nginx")))
    conf = (HERE / "nginx" / "nginx.conf.tmpl").read_text()
    conf = (conf.replace("@USER@", "user root;" if os.geteuid() == 0 else "")
            .replace("@PREFIX@", str(run / "nginx")).replace("@SERVERS@", servers))
    (run / "nginx").mkdir(exist_ok=True)
    (run / "nginx" / "nginx.conf").write_text(conf)
    proc = procs.start(["nginx", "-c", str(run / "nginx" / "nginx.conf"), "-p", str(run / "nginx"), "-g", "daemon off;"],
                       run / "nginx.log")
    for port in [*NGINX_PORTS.values(), ACCOUNTS_PORT]:
        procs.wait_port(port, 10, proc)
    return proc


class Spread:
    """Upstream requests per account and status, per gateway, from the fake's access log of chat-8acct
    (which names the account by number): {gateway: {account: {status: n}}}."""

    def __init__(self, log_path: Path) -> None:
        self.path = log_path
        self.counts: dict[str, dict[str, dict[str, int]]] = {}

    @contextlib.contextmanager
    def of(self, gateway: str) -> Iterator[None]:
        start = self.path.stat().st_size if self.path.exists() else 0
        yield
        time.sleep(0.3)  # nginx logs a request after its last byte is written
        with open(self.path, "rb") as f:
            f.seek(start)
            lines = f.read().decode().splitlines()
        mine = self.counts.setdefault(gateway, {})
        for line in lines:
            account, status = line.split()
            per = mine.setdefault(account, {})
            per[status] = per.get(status, 0) + 1


def request_file(run: Path, wl: Workload, gw: gateways.Gateway, upstream: str | None = None) -> Path:
    model = gw.model(upstream or wl.upstream)
    path = run / "requests" / f"{wl.client}-{'sse' if wl.stream else 'json'}-{model.replace('/', '_').replace(',', '_')}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(bodies.request_bytes(wl.client, model, wl.stream))
    return path


def target(wl: Workload, gw: gateways.Gateway) -> str:
    return f"http://127.0.0.1:{NGINX_PORTS[wl.direct_body]}" if isinstance(gw, gateways.Direct) else gw.url


def validate(wl: Workload, gw: gateways.Gateway, body: Path) -> str:
    """One request, its answer checked (bodies.check_response): a gateway that answers errors is not measured.
    Returns a note when the answer is usable but deviates from the SDK types."""
    headers = {"content-type": "application/json", "authorization": f"Bearer {gw.key}", "x-api-key": gw.key,
               **HEADERS.get(wl.client, {})}
    req = urllib.request.Request(target(wl, gw) + bodies.PATHS[wl.client], data=body.read_bytes(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise bodies.BadResponse(f"HTTP {exc.code}: {exc.read()[:300]!r}") from None
    return bodies.check_response(wl.client, wl.stream, raw)


def wrk(wl: Workload, gw: gateways.Gateway, body: Path, conc: int, duration: float) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_KEY": gw.key, "BENCH_LUA_DIR": str(HERE / "lua")}
    cmd = ["wrk", "-t1", f"-c{conc}", f"-d{max(1, round(duration))}s", "--timeout", "60s",
           "-s", str(HERE / "lua" / f"{wl.client}.lua"), target(wl, gw)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 120)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    raise RuntimeError(f"wrk printed no result: {out.stdout[-500:]} {out.stderr[-500:]}")


def wrk_errors(res: dict[str, Any]) -> int:
    return res["non2xx"] + res["connect"] + res["read"] + res["write"] + res["timeout"]


def wrk_error_detail(res: dict[str, Any]) -> dict[str, Any]:
    return {k: res[k] for k in ("non2xx", "connect", "read", "write", "timeout", "first_bad") if res[k]}


def measure(wl: Workload, gw: gateways.Gateway, pid: int, body: Path, conc: int, rnd: int, duration: float) -> Run:
    with procs.Sampler(pid) as sample:
        res = wrk(wl, gw, body, conc, duration)
    n = res["requests"]
    secs = res["duration_us"] / 1e6
    return Run(wl.id, gw.name, conc, rnd, n / secs if secs else 0.0, res["p50_us"] / 1000, res["p99_us"] / 1000,
               sample.cpu_ms / n if n else float("nan"), sample.peak_kb / 1024, wrk_errors(res), n, secs,
               wrk_error_detail(res))


# ---------------------------------------------------------------- the open-streams test

@dataclass
class StreamsResult:
    gateway: str
    client: str
    streams: int
    ok: int
    errors: int
    first_error: str
    idle_rss_mb: float
    peak_rss_mb: float
    cpu_ms: float
    cpu_pct: float      # average over the whole test, % of one core
    open_s: float
    total_s: float


def open_streams(run: Path, gw: gateways.Gateway, client: str, pid: int) -> StreamsResult:
    wl = Workload("slow", "", client, True, "slow", "5")
    body = request_file(run, wl, gw)
    headers = {"content-type": "application/json", "authorization": f"Bearer {gw.key}", "x-api-key": gw.key,
               **HEADERS.get(client, {})}
    time.sleep(1.0)
    idle = procs.rss_kb(procs.tree(pid)) / 1024
    import asyncio
    with procs.Sampler(pid, interval=0.2) as sample:
        res = asyncio.run(openstreams.run(gw.url, bodies.PATHS[client], body.read_bytes(), headers, client, STREAMS,
                                          timeout=DRIP * 6 + 30))
    return StreamsResult(gw.name, client, STREAMS, res.ok, res.errors, res.first_error, idle, sample.peak_kb / 1024,
                         sample.cpu_ms, 100 * sample.cpu_ms / 1000 / sample.wall_s, res.open_s, res.total_s)


# ---------------------------------------------------------------- the soak

def soak_mix(run: Path, gw: gateways.Gateway) -> tuple[list[tuple[Workload, Path]], dict[str, str]]:
    """The workloads gw serves whose answer passes the check, and why the others were left out."""
    mix: list[tuple[Workload, Path]] = []
    left_out: dict[str, str] = {}
    for wl in WORKLOADS:
        if wl.accounts or not gw.can(wl.client, wl.upstream):
            continue
        body = request_file(run, wl, gw)
        try:
            validate(wl, gw, body)
        except Exception as exc:
            left_out[wl.id] = f"{type(exc).__name__}: {exc}"[:300]
            log(f"  {wl.id}: INVALID answer, left out of the soak: {exc}")
            continue
        mix.append((wl, body))
    return mix, left_out


def run_soak(run: Path, gw: gateways.Gateway) -> dict[str, Any]:
    """SOAK seconds of wrk runs of SOAK_RUN s at c=SOAK_CONC, cycling through the mix, while the gateway's
    process tree's RSS is sampled every second."""
    mix, left_out = soak_mix(run, gw)
    if not mix:
        raise RuntimeError(f"soak: no workload answered correctly: {left_out}")
    runs: list[dict[str, Any]] = []
    with procs.Sampler(gw.pid, interval=1.0) as sample:
        for wl, body in itertools.cycle(mix):
            start = time.monotonic() - sample.t0
            if SOAK - start < 1:
                break
            res = wrk(wl, gw, body, SOAK_CONC, min(SOAK_RUN, SOAK - start))
            runs.append({"workload": wl.id, "start_s": start, "end_s": time.monotonic() - sample.t0,
                         "requests": res["requests"], "errors": wrk_errors(res), "detail": wrk_error_detail(res)})
            log(f"  soak {start:4.0f} s {wl.id:<22} {res['requests']:8,} req  err {runs[-1]['errors']}  "
                f"rss {sample.samples[-1][1] / 1024 if sample.samples else 0:6.1f} MB")
    end = (time.monotonic(), procs.rss_kb(procs.tree(gw.pid)))
    samples = [(t - sample.t0, kb / 1024) for t, kb, *_ in [*sample.samples, end]]
    errors = [r for r in runs if r["errors"]]
    return {"gateway": gw.name, "duration_s": SOAK, "conc": SOAK_CONC, "run_s": SOAK_RUN,
            "mix": [wl.id for wl, _ in mix], "left_out": left_out,
            "requests": sum(r["requests"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "first_error": f"{errors[0]['workload']}: {json.dumps(errors[0]['detail'])}" if errors else "",
            **soak.figures(samples, runs, SOAK), "runs": runs}


# ---------------------------------------------------------------- main

def machine_info() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    def ver(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except OSError:
            return "?"
    return {"cpu": f"{os.cpu_count()} x {cpu}", "memory": mem, "kernel": platform.release(),
            "os": ver(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]), "python": platform.python_version(),
            "nginx": ver(["nginx", "-v"]), "wrk": ver(["wrk", "-v"]).split(" [")[0], "node": ver(["node", "--version"]),
            "load": " ".join(Path("/proc/loadavg").read_text().split()[:3])}


def main() -> int:
    t_start = time.monotonic()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000 streams: client + gateway + upstream sockets
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing (make bench installs nginx-light and wrk with apt-get)", file=sys.stderr)
            return 2
    busy = [p for p in [*NGINX_PORTS.values(), SLOW_PORT, *GATEWAY_PORTS.values()] if not procs.port_free(p)]
    if busy:
        print(f"bench: ports already in use: {busy}", file=sys.stderr)
        return 2

    run = HERE / "out" / datetime.now().strftime("%Y%m%d-%H%M%S")
    run.mkdir(parents=True)
    log(f"run dir {run}; quick={QUICK} duration={DURATION}s warmup={WARMUP}s rounds={ROUNDS} c={CONCS} "
        f"streams={STREAMS} soak={SOAK:.0f}s")
    bodies.write_all(run / "bodies", {})
    info = machine_info()

    started: list[subprocess.Popen[bytes]] = []
    gws: list[gateways.Gateway] = []
    skipped: dict[str, str] = {}
    try:
        nginx = start_nginx(run, run / "bodies" / "upstream")
        started.append(nginx)
        slow = procs.start([sys.executable, str(HERE / "slowdrip.py"), str(SLOW_PORT), str(DRIP)], run / "slowdrip.log")
        started.append(slow)
        procs.wait_port(SLOW_PORT, 10, slow)
        ports = {**NGINX_PORTS, "chat-8acct": ACCOUNTS_PORT, "slow": SLOW_PORT}

        direct = gateways.Direct()
        direct.proc = nginx
        direct.version = info["nginx"]
        candidates: list[gateways.Gateway] = [gateways.NginxProxy(GATEWAY_PORTS["proxy"]),
                                              gateways.Crossroute(GATEWAY_PORTS["crossroute"]),
                                              gateways.Crossroute(GATEWAY_PORTS["crossroute2"], workers=2)]
        peer_map = dict(zip(("litellm", "ccr", "9router"), gateways.peers(CACHE, GATEWAY_PORTS), strict=True))
        candidates += [peer_map[p] for p in PEERS]
        for gw in candidates:
            if gw.skip:
                skipped[gw.name] = gw.skip
                log(f"skip {gw.name}: {gw.skip}")
                continue
            log(f"starting {gw.name}")
            try:
                gw.start(run, ports)
                gws.append(gw)
                log(f"  {gw.version} pid {gw.pid}")
            except Exception as exc:  # a peer that cannot start is reported, not fatal
                skipped[gw.name] = f"could not start: {exc}"
                log(f"skip {gw.name}: {exc}")
                gw.stop()
        if not any(isinstance(g, gateways.Crossroute) for g in gws):
            raise RuntimeError("crossroute did not start: " + "; ".join(skipped.values()))

        runs: list[Run] = []
        invalid: dict[str, dict[str, str]] = {}
        notes: dict[str, dict[str, str]] = {}
        versions = {direct.name: direct.version, **{g.name: g.version for g in gws}}
        spread = Spread(run / "nginx" / "accounts.log")
        for wl in WORKLOADS:
            if ONLY and wl.id not in ONLY:
                continue
            cast = [g for g in [direct, *gws]
                    if g.can(wl.client, wl.direct_body if isinstance(g, gateways.Direct) else wl.upstream)
                    and (not wl.accounts or isinstance(g, gateways.Direct | gateways.Crossroute))]

            def counted(gw: gateways.Gateway, wl: Workload = wl) -> contextlib.AbstractContextManager[None]:
                return spread.of(gw.name) if wl.accounts and not isinstance(gw, gateways.Direct) \
                    else contextlib.nullcontext()
            log(f"== {wl.id}: {wl.title}: {', '.join(g.name for g in cast)}")
            ready: list[tuple[gateways.Gateway, Path]] = []
            for gw in cast:
                body = request_file(run, wl, gw)
                try:
                    with counted(gw):
                        note = validate(wl, gw, body)
                    if note:
                        notes.setdefault(wl.id, {})[gw.name] = note
                        log(f"  {gw.name}: answer accepted with a deviation: {note}")
                except Exception as exc:
                    invalid.setdefault(wl.id, {})[gw.name] = f"{type(exc).__name__}: {exc}"[:300]
                    log(f"  {gw.name}: INVALID answer, not measured: {exc}")
                    continue
                with counted(gw):
                    wrk(wl, gw, body, 32, WARMUP)
                ready.append((gw, body))
            rps32: dict[str, float] = {}
            for conc in CONCS:
                for rnd in range(1, ROUNDS + 1):
                    for gw, body in ready:
                        dur = DURATION
                        if conc > 32 and gw.name in rps32:  # let a slow gateway finish a few waves of 256
                            dur = min(MAX_STRETCH, max(DURATION, 3 * conc / max(rps32[gw.name], 1)))
                        with counted(gw):
                            r = measure(wl, gw, gw.pid, body, conc, rnd, dur)
                        runs.append(r)
                        log(f"  c={conc:<3} r{rnd} {gw.name:<24} {r.rps:9.1f} req/s  p50 {r.p50_ms:7.2f} ms  "
                            f"p99 {r.p99_ms:8.2f} ms  cpu {r.cpu_ms_per_req:6.2f} ms/req  rss {r.peak_rss_mb:6.0f} MB  "
                            f"err {r.errors}{'  ' + json.dumps(r.detail) if r.detail else ''}")
                    if conc == 32:
                        for gw, _ in ready:
                            rps32[gw.name] = statistics.median(x.rps for x in runs if x.workload == wl.id
                                                               and x.gateway == gw.name and x.conc == 32)
            if wl.accounts:
                for line in report.spread_lines(spread.counts, len(gateways.ACCOUNT_KEYS)):
                    log(f"  {line}")

        soaked: dict[str, Any] | None = None
        crossroute = next((g for g in gws if g.name == report.CR), None)
        if SOAK and (not ONLY or "soak" in ONLY) and crossroute is not None:
            log(f"== soak: {crossroute.name} under {SOAK:.0f} s of mixed load, c={SOAK_CONC}, {SOAK_RUN:.0f} s wrk runs")
            soaked = run_soak(run, crossroute)
            w = soaked["window"]
            log(f"  {soaked['requests']:,} requests, {soaked['errors']} errors; RSS {w['rss_min_mb']:.1f}-"
                f"{w['rss_max_mb']:.1f} MB from {w['from_s']:.0f} s, growth {w['growth_mb']:+.1f} MB, "
                f"slope {w['slope_mb_per_min']:+.2f} MB/min")

        streams: list[StreamsResult] = []
        if STREAMS and (not ONLY or "streams" in ONLY):
            log(f"== {STREAMS} open slow streams ({DRIP:.0f} s each)")
            for gw in gws:
                for client in ("chat", "anthropic"):
                    if not gw.can(client, "slow"):
                        continue
                    if client == "anthropic" and not isinstance(gw, gateways.ClaudeCodeRouter) and gw.name != "crossroute":
                        continue  # Anthropic clients: crossroute beside claude-code-router, which speaks only that
                    s = open_streams(run, gw, client, gw.pid)
                    streams.append(s)
                    log(f"  {gw.name:<24} {client:<9} ok {s.ok}/{s.streams} err {s.errors} rss {s.idle_rss_mb:.0f} -> "
                        f"{s.peak_rss_mb:.0f} MB  cpu {s.cpu_ms:.0f} ms ({s.cpu_pct:.0f}%)  open in {s.open_s:.1f} s, "
                        f"done in {s.total_s:.1f} s {s.first_error}")
    except Exception:
        traceback.print_exc()
        raise
    finally:
        for gw in gws:
            gw.stop()
        for proc in started:
            procs.stop(proc)

    elapsed = time.monotonic() - t_start
    data = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": info, "versions": versions,
            "quick": QUICK, "settings": {"duration_s": DURATION, "warmup_s": WARMUP, "rounds": ROUNDS,
                                         "concurrency": CONCS, "streams": STREAMS, "drip_s": DRIP,
                                         "soak_s": SOAK},
            "elapsed_s": elapsed, "skipped": skipped, "invalid": invalid, "notes": notes,
            "workloads": [w.__dict__ for w in WORKLOADS if not ONLY or w.id in ONLY],
            "runs": [r.__dict__ for r in runs], "streams": [s.__dict__ for s in streams], "soak": soaked,
            "spread": spread.counts, "accounts": len(gateways.ACCOUNT_KEYS)}
    (run / "results.json").write_text(json.dumps(data, indent=1))
    OUT.mkdir(parents=True, exist_ok=True)
    report.write(data, OUT / "benchmarks.md", OUT / "benchmarks.png",
                 readme=ROOT / "README.md" if OUT.resolve() == (ROOT / "docs").resolve() else None)
    log(f"done in {elapsed / 60:.1f} min: {OUT / 'benchmarks.md'}, {OUT / 'benchmarks.png'}, raw {run / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
