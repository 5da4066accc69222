"""docs/benchmarks.md and docs/benchmarks.png from one run's results (bench/out/<run>/results.json),
and the headline block of README.md between its bench markers.

    python bench/report.py bench/out/<run>/results.json [OUTDIR]    # redo the report of a run
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

CR = "crossroute"
PROXY = "nginx proxy_pass"
NOT_PEERS = {"direct (nginx)", PROXY, CR, "crossroute --workers 2"}
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
ORDER = ["direct (nginx)", PROXY, "crossroute", "crossroute --workers 2", "LiteLLM", "claude-code-router", "9router"]
COLORS = {"direct (nginx)": "#9e9e9e", PROXY: "#616161", "crossroute": "#1565c0", "crossroute --workers 2": "#64b5f6",
          "LiteLLM": "#e65100", "claude-code-router": "#6a1b9a", "9router": "#2e7d32"}
SHORT = {"chat-json": "chat JSON", "chat-json-8acct": "chat JSON, 8 accounts", "chat-sse": "chat stream", "anthropic-json": "Anthropic->chat JSON",
         "anthropic-sse": "Anthropic->chat stream", "responses-sse": "Responses->chat stream",
         "chat-to-anthropic-sse": "chat->Anthropic stream", "chat-to-gemini-sse": "chat->Gemini stream"}


def _stats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rps = [r["rps"] for r in runs]
    cpu = [r["cpu_ms_per_req"] for r in runs if not math.isnan(r["cpu_ms_per_req"])]
    return {"rps": statistics.median(rps), "rps_min": min(rps), "rps_max": max(rps),
            "p50": statistics.median(r["p50_ms"] for r in runs), "p99": statistics.median(r["p99_ms"] for r in runs),
            "cpu": statistics.median(cpu) if cpu else float("nan"), "rss": max(r["peak_rss_mb"] for r in runs),
            "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs),
            "dur": statistics.median(r["duration_s"] for r in runs), "n": len(runs)}


def summarize(data: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in data["runs"]:
        groups.setdefault((r["workload"], r["gateway"], r["conc"]), []).append(r)
    return {k: _stats(v) for k, v in groups.items()}


def _num(x: float) -> str:
    if math.isnan(x):
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def _ratio(x: float) -> str:
    return "-" if math.isnan(x) or x == 0 else f"{x:.1f}x" if x < 10 else f"{x:.0f}x"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")


def _mem(meminfo: str) -> str:
    parts = meminfo.split()
    return f"{int(parts[0]) / 1024 / 1024:.0f} GiB" if len(parts) == 2 and parts[1] == "kB" else meminfo


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{round(seconds % 60):02d}"


def _span(seconds: float, unit: tuple[str, str] = (" min", " s")) -> str:
    return f"{seconds / 60:.0f}{unit[0]}" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:.0f}{unit[1]}"


def _gw_order(names: set[str]) -> list[str]:
    return [g for g in ORDER if g in names] + sorted(names - set(ORDER))


def ratios(s: dict[tuple[str, str, int], dict[str, Any]], wl: str, peer: str, conc: int) -> tuple[float, float]:
    """(crossroute req/s / peer req/s, peer CPU per request / crossroute's)."""
    a, b = s.get((wl, CR, conc)), s.get((wl, peer, conc))
    if not a or not b or not b["rps"]:
        return float("nan"), float("nan")
    cpu = b["cpu"] / a["cpu"] if a["cpu"] and not math.isnan(a["cpu"]) else float("nan")
    return a["rps"] / b["rps"], cpu


def floor_line(s: dict[tuple[str, str, int], dict[str, Any]], conc: int = 32) -> str:
    """crossroute's passthrough CPU per request as a multiple of a bare nginx proxy_pass hop's (chat JSON)."""
    proxy = s.get(("chat-json", PROXY, conc))
    if not proxy or not proxy["cpu"] or math.isnan(proxy["cpu"]):
        return ""
    parts = [f"{label} {x['cpu']:.3f} ms = {_ratio(x['cpu'] / proxy['cpu'])}"
             for label, key in (("chat JSON", ("chat-json", CR, conc)),
                                ("chat JSON over 8 accounts", ("chat-json-8acct", CR, conc)))
             if (x := s.get(key)) and not math.isnan(x["cpu"])]
    if not parts:
        return ""
    return (f"crossroute's passthrough CPU per request (one worker, c={conc}) as a multiple of a bare nginx "
            f"`proxy_pass` hop's ({proxy['cpu']:.3f} ms, the floor for any proxy on this machine): " + ", ".join(parts))


def spread_lines(counts: dict[str, dict[str, dict[str, int]]], accounts: int) -> list[str]:
    """Per gateway: how the upstream requests fell on the accounts (the last one is cooling), from the
    fake's access log; the ready ones are even when each is within 10% of their mean."""
    lines = []
    for gw, per in counts.items():
        cooling = sum(per.get(str(accounts), {}).values())
        ready = [sum(per.get(str(n), {}).values()) for n in range(1, accounts)]
        mean = statistics.mean(ready) if ready else 0
        dev = [100 * (r - mean) / mean for r in ready] if mean else [0.0]
        even = bool(mean) and max(abs(d) for d in dev) <= 10
        statuses = ", ".join(f"{st} x{n}" for st, n in sorted(per.get(str(accounts), {}).items()))
        unknown = sum(per.get("-", {}).values())
        lines.append(f"spread, {gw}: cooling account {accounts}/{accounts}: {cooling} upstream request(s)"
                     f"{f' ({statuses})' if statuses else ''}; the other {accounts - 1}: {min(ready):,}-"
                     f"{max(ready):,} each ({min(dev):+.1f}%..{max(dev):+.1f}% of their mean): "
                     f"{'even (within 10%)' if even else 'NOT even'}"
                     f"{f'; {unknown} request(s) with an unknown key' if unknown else ''}")
    return lines


def markdown(data: dict[str, Any], png_name: str) -> str:
    s = summarize(data)
    m, st = data["machine"], data["settings"]
    peers = [g for g in _gw_order({k[1] for k in s}) if g not in NOT_PEERS]
    out = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` ({'quick run' if data['quick'] else 'full run'}) on {data['date']}, "
        f"in {data['elapsed_s'] / 60:.0f} min. Harness and method: [bench/README.md](../bench/README.md). "
        "Numbers are from this one run: compare rows with each other (same machine, same minutes, "
        "interleaved rounds), not with another run.",
        "",
        f"Machine: {m['cpu']}, {_mem(m['memory'])} RAM, {m['os']}, kernel {m['kernel']}; load average at start "
        f"{m['load']}. One wrk thread; nginx, wrk and the gateway share the 2 cores.",
        "",
        "Versions: " + ", ".join(dict.fromkeys(v.replace("nginx version: nginx/", "nginx ") for v in
                                               data["versions"].values())) +
        f", {m['wrk'].replace('wrk debian/', 'wrk ')}, node {m['node']} (claude-code-router, 9router), "
        f"Python {m['python']} (crossroute, LiteLLM).",
        "",
        f"Settings: {st['rounds']} interleaved round(s) of {st['duration_s']:.0f} s per configuration "
        f"(c=256 runs of gateways slower than {3 * 256 / max(st['duration_s'], 1):.0f} req/s at c=32 are stretched "
        f"up to 20 s so several waves complete), {st['warmup_s']:.0f} s warm-up per gateway and workload, "
        f"concurrency {', '.join(map(str, st['concurrency']))}. Each gateway runs one process "
        "(one worker) unless its row says otherwise. Every configuration's answer was checked once with the "
        "official SDK types (same text, well-formed stream) before it was measured.",
        "",
        "Columns: req/s is the median of the rounds with [min-max]; p50 / p99 latency (to the last byte of the "
        "answer, as wrk measures) and CPU ms per request are medians; CPU is user+system time of the gateway's "
        "process tree from /proc over the run divided by the requests it completed; peak RSS is the largest "
        "summed VmRSS of the process tree sampled every 0.25 s; errors are non-2xx answers plus socket "
        "errors and timeouts, summed over rounds.",
        "",
    ]
    if data["skipped"]:
        out += ["## Peers not measured", ""]
        out += [f"- **{name}**: {why}" for name, why in data["skipped"].items()]
        out.append("")

    # headline
    out += ["## Headline (c=32)", "", "crossroute's requests per second divided by the peer's, and the peer's CPU "
            "time per request divided by crossroute's (both higher = crossroute better), same run.", "",
            "| workload | " + " | ".join(f"vs {p}: req/s, CPU" for p in peers) + " |",
            "|---|" + "---|" * len(peers)]
    for w in data["workloads"]:
        cells = []
        for p in peers:
            r, c = ratios(s, w["id"], p, 32)
            cells.append("-" if math.isnan(r) else f"{_ratio(r)}, {_ratio(c)}")
        if any(c != "-" for c in cells):
            out.append(f"| {SHORT.get(w['id'], w['id'])} | " + " | ".join(cells) + " |")
    floor = floor_line(s)
    out += ["", *([floor, ""] if floor else []), f"![requests per second per workload and gateway]({png_name})", ""]

    for w in data["workloads"]:
        out += [f"## {w['group']}. {w['title']}", ""]
        invalid = data["invalid"].get(w["id"], {})
        for g, why in invalid.items():
            out.append(f"- **{g}** not measured: its answer did not pass the check: `{_one_line(why)}`")
        for g, note in data.get("notes", {}).get(w["id"], {}).items():
            out.append(f"- {g}'s answer is usable but deviates from the SDK types: `{_one_line(note)}`")
        if invalid or data.get("notes", {}).get(w["id"]):
            out.append("")
        names = {k[1] for k in s if k[0] == w["id"]}
        if not names:
            out += ["(not run)", ""]
            continue
        out += ["| c | gateway | req/s median [min-max] | p50 ms | p99 ms | CPU ms/req | peak RSS MB | errors |",
                "|---:|---|---:|---:|---:|---:|---:|---:|"]
        for conc in st["concurrency"] if not data["quick"] else sorted({k[2] for k in s}):
            for g in _gw_order(names):
                x = s.get((w["id"], g, conc))
                if x is None:
                    continue
                stretched = f" ({x['dur']:.0f} s runs)" if x["dur"] > st["duration_s"] + 1.5 else ""
                out.append(f"| {conc} | {g}{stretched} | {_num(x['rps'])} [{_num(x['rps_min'])}-{_num(x['rps_max'])}] "
                           f"| {_num(x['p50'])} | {_num(x['p99'])} | {_num(x['cpu'])} | {x['rss']:.0f} | {x['errors']} |")
        out.append("")
        lines = []
        for p in [g for g in _gw_order(names) if g in peers]:
            parts = []
            for conc in sorted({k[2] for k in s if k[0] == w["id"]}):
                r, c = ratios(s, w["id"], p, conc)
                if not math.isnan(r):
                    parts.append(f"c={conc}: req/s {_ratio(r)}, CPU/req {_ratio(c)}")
            if parts:
                lines.append(f"- crossroute / {p}: " + "; ".join(parts))
        two = [f"c={c}: {_ratio(s[(w['id'], 'crossroute --workers 2', c)]['rps'] / s[(w['id'], CR, c)]['rps'])}"
               for c in sorted({k[2] for k in s if k[0] == w["id"]})
               if (w["id"], "crossroute --workers 2", c) in s and (w["id"], CR, c) in s and s[(w["id"], CR, c)]["rps"]]
        if two:
            lines.append("- crossroute --workers 2 / --workers 1 req/s: " + "; ".join(two))
        if w["id"] == "chat-json" and floor:
            lines.append(f"- {floor}")
        if w.get("accounts") and data.get("spread"):
            lines += [f"- {x}" for x in spread_lines(data["spread"], data["accounts"])]
        out += lines + [""] if lines else []

    if data["streams"]:
        n = data["streams"][0]["streams"]
        out += [f"## 5. {n:,} concurrent open slow streams", "",
                f"{n:,} streaming requests opened at once by an asyncio client, each answered by a slow-drip "
                f"upstream (bench/slowdrip.py) that spreads 23 Chat SSE events over {st['drip_s']:.0f} s; every "
                "answer is checked like the others. RSS is the gateway process tree's (idle just before, peak "
                "while open); CPU is its total over the test and the average share of one core. Rows of one gateway run "
                "one after another in the same process, so a second row starts from the memory the first kept.", "",
                "| gateway | client | completed | errors | RSS idle MB | RSS peak MB | per stream KB | CPU ms | CPU % | "
                "all open after s | all done after s |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for x in data["streams"]:
            per = (x["peak_rss_mb"] - x["idle_rss_mb"]) * 1024 / x["streams"]
            out.append(f"| {x['gateway']} | {x['client']} | {x['ok']:,}/{x['streams']:,} | {x['errors']} | "
                       f"{x['idle_rss_mb']:.0f} | {x['peak_rss_mb']:.0f} | {per:.0f} | {x['cpu_ms']:,.0f} | "
                       f"{x['cpu_pct']:.0f} | {x['open_s']:.1f} | {x['total_s']:.1f} |")
        errs = [x for x in data["streams"] if x["first_error"]]
        if errs:
            out.append("")
            out += [f"- {x['gateway']} ({x['client']}): first error: `{_one_line(x['first_error'])}`" for x in errs]
        out.append("")

    if data.get("soak"):
        out += soak_section(data["soak"])

    here = Path(__file__).resolve().parent
    for title, name in (("Instructions per request against a reference tree", "instructions.md"),
                        ("What was tried", "tried.md")):
        notes = here / name
        if notes.exists():
            out += [f"## {title}", "", notes.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(out)


def soak_section(x: dict[str, Any]) -> list[str]:
    w = x["window"]
    out = ["## 6. Memory over time (soak)", "",
           f"{x['gateway']} (one worker) under {_span(x['duration_s'])} of mixed load: wrk runs of {x['run_s']:.0f} s "
           f"at c={x['conc']} cycling through {', '.join(SHORT.get(i, i) for i in x['mix'])}; the RSS of its process "
           "tree sampled every second. It comes after the workloads above and before the open-streams test, in the "
           "same process as their crossroute rows.", ""]
    if x["left_out"]:
        out += [f"- {wl} left out: its answer did not pass the check: `{_one_line(why)}`"
                for wl, why in x["left_out"].items()] + [""]
    out += ["| minute | RSS MB | requests so far |", "|---:|---:|---:|"]
    out += [f"| {_clock(m['t_s'])} | {m['rss_mb']:.1f} | {m['requests']:,} |" for m in x["marks"]]
    out += ["", f"From {_clock(w['from_s'])} to the end ({_clock(w['to_s'])}): RSS {w['rss_min_mb']:.1f}-"
            f"{w['rss_max_mb']:.1f} MB, growth {w['growth_mb']:+.1f} MB ({w['rss_start_mb']:.1f} -> "
            f"{w['rss_end_mb']:.1f}), least-squares slope {w['slope_mb_per_min']:+.2f} MB/min; "
            f"{x['requests']:,} requests, {x['errors']} errors."]
    if x["first_error"]:
        out.append(f"First error: `{_one_line(x['first_error'])}`")
    return [*out, ""]


def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summarize(data)
    if not s:
        return
    concs = [c for c in data["settings"]["concurrency"] if any(k[2] == c for k in s)]
    concs = sorted(concs)
    wls = [w["id"] for w in data["workloads"] if any(k[0] == w["id"] for k in s)]
    names = _gw_order({k[1] for k in s})
    fig, axes = plt.subplots(len(concs), 1, figsize=(13, 3.6 * len(concs) + 0.6), squeeze=False)
    width = 0.8 / len(names)
    for ax, conc in zip(axes[:, 0], concs, strict=True):
        for i, g in enumerate(names):
            xs, ys, errs_lo, errs_hi = [], [], [], []
            for j, w in enumerate(wls):
                x = s.get((w, g, conc))
                if x:
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(x["rps"])
                    errs_lo.append(x["rps"] - x["rps_min"])
                    errs_hi.append(x["rps_max"] - x["rps"])
            if xs:
                ax.bar(xs, ys, width, label=g, color=COLORS.get(g), yerr=[errs_lo, errs_hi], capsize=2,
                       error_kw={"elinewidth": 0.8})
                for x, y, hi in zip(xs, ys, errs_hi, strict=True):
                    ax.text(x, (y + hi) * 1.15, _num(y), ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 6)
        ax.set_xticks(range(len(wls)), [SHORT.get(w, w) for w in wls], fontsize=8)
        ax.set_ylabel("requests / s (log)")
        ax.set_title(f"concurrency {conc}", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0, 0].legend(ncol=len(names), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.32))
    fig.suptitle(f"crossroute beside its peers: median req/s [min-max], {data['date']}", y=0.995, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def headline(data: dict[str, Any]) -> str:
    s = summarize(data)
    lines = [README_START, "",
             f"Measured beside its peers on the same fake upstream (2 cores, one worker each, c=32, "
             f"{data['date'][:10]}; [docs/benchmarks.md](docs/benchmarks.md) has every number, the method and the "
             "chart). crossroute's requests per second as a multiple of the peer's, and the peer's CPU per request "
             "as a multiple of crossroute's:", ""]
    for p in ("LiteLLM", "claude-code-router", "9router"):
        parts = []
        for w in data["workloads"]:
            r, c = ratios(s, w["id"], p, 32)
            if not math.isnan(r):
                parts.append(f"{SHORT.get(w['id'], w['id'])} {_ratio(r)} ({_ratio(c)} CPU)")
        if parts:
            lines.append(f"- vs {p}: " + ", ".join(parts))
        elif p in data["skipped"]:
            lines.append(f"- vs {p}: not measured ({data['skipped'][p][:120]})")
    if floor := floor_line(s):
        lines.append(f"- {floor}")
    for x in data["streams"]:
        if x["gateway"] == CR and x["client"] == "chat":
            lines.append(f"- {x['streams']:,} open slow streams: crossroute {x['peak_rss_mb']:.0f} MB RSS at peak "
                         f"({x['idle_rss_mb']:.0f} MB idle), {x['cpu_pct']:.0f}% of a core, {x['errors']} errors")
    if data.get("soak"):
        x = data["soak"]
        w = x["window"]
        lines.append(f"- {_span(x['duration_s'], ('-minute', '-second'))} mixed load: "
                     f"{x['requests']:,} requests, RSS {w['rss_start_mb']:.1f} MB after {_span(w['from_s'])}, "
                     f"{w['rss_end_mb']:.1f} MB at the end (slope {w['slope_mb_per_min']:+.2f} MB/min)")
    lines += ["", README_END]
    return "\n".join(lines)


def write(data: dict[str, Any], md: Path, png: Path, readme: Path | None = None) -> None:
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(markdown(data, png.name))
    chart(data, png)
    if readme is not None:
        text = readme.read_text()
        block = headline(data)
        if README_START in text and README_END in text:
            head, rest = text.split(README_START, 1)
            text = head + block + rest.split(README_END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n## Performance\n\n" + block + "\n"
        readme.write_text(text)


if __name__ == "__main__":
    results = json.loads(Path(sys.argv[1]).read_text())
    outdir = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(sys.argv[1]).parent
    root = Path(__file__).resolve().parent.parent
    write(results, outdir / "benchmarks.md", outdir / "benchmarks.png",
          readme=root / "README.md" if outdir.resolve() == (root / "docs").resolve() else None)
    print(outdir / "benchmarks.md")
