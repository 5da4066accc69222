"""The soak's figures (bench/run.py, BENCH_SOAK): from the gateway's RSS sampled every second and the wrk runs
that loaded it, RSS and requests so far at 30 s and at each whole minute, and the window from the end of
minute 2 (1/5 of a shorter run) to the end: its min/max RSS, growth and least-squares slope.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

MAX_POINTS = 600     # raw samples kept in results.json


def window_start(duration: float) -> float:
    return min(120.0, duration / 5)


def marks(duration: float) -> list[float]:
    ts = [30.0] * (duration >= 30) + [60.0 * m for m in range(1, int(duration // 60) + 1)]
    return ts if duration in ts else [*ts, duration]


def rss_at(samples: list[tuple[float, float]], t: float) -> float:
    return min(samples, key=lambda s: abs(s[0] - t))[1]


def requests_at(runs: list[dict[str, Any]], t: float) -> int:
    """Requests completed by t, counting a wrk run in progress at t pro rata."""
    done = 0.0
    for r in runs:
        if r["end_s"] <= t:
            done += r["requests"]
        elif r["start_s"] < t:
            done += r["requests"] * (t - r["start_s"]) / (r["end_s"] - r["start_s"])
    return round(done)


def slope_per_min(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return float("nan")
    return statistics.linear_regression([t for t, _ in samples], [mb for _, mb in samples]).slope * 60


def downsample(samples: list[tuple[float, float]]) -> list[list[float]]:
    step = math.ceil(len(samples) / MAX_POINTS) or 1
    return [[round(t, 1), round(mb, 2)] for t, mb in samples[::step]]


def figures(samples: list[tuple[float, float]], runs: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    """samples: (seconds since the start, RSS MB); runs: the wrk runs with start_s, end_s and requests."""
    start = window_start(duration)
    window = [s for s in samples if s[0] >= start] or samples[-1:]
    return {
        "marks": [{"t_s": t, "rss_mb": rss_at(samples, t), "requests": requests_at(runs, t)} for t in marks(duration)],
        "window": {"from_s": start, "to_s": samples[-1][0], "rss_start_mb": window[0][1], "rss_end_mb": window[-1][1],
                   "rss_min_mb": min(mb for _, mb in window), "rss_max_mb": max(mb for _, mb in window),
                   "growth_mb": window[-1][1] - window[0][1], "slope_mb_per_min": slope_per_min(window)},
        "samples": downsample(samples),
    }
