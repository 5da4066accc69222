"""Counters for /metrics (Prometheus text format)."""

from __future__ import annotations

from collections import Counter

from crossroute import ir


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.input_tokens: Counter[tuple[str, str]] = Counter()
        self.output_tokens: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, int]] = Counter()

    def finished(self, provider: str, model: str, usage: ir.Usage | None) -> None:
        key = (provider, model)
        self.requests[key] += 1
        if usage is not None:
            self.input_tokens[key] += usage.input_tokens
            self.output_tokens[key] += usage.output_tokens

    def upstream_error(self, provider: str, status: int) -> None:
        self.errors[(provider, status)] += 1

    def render(self) -> str:
        lines = [
            "# TYPE crossroute_requests_total counter",
            *(f'crossroute_requests_total{{provider="{p}",model="{_q(m)}"}} {n}' for (p, m), n in self.requests.items()),
            "# TYPE crossroute_input_tokens_total counter",
            *(f'crossroute_input_tokens_total{{provider="{p}",model="{_q(m)}"}} {n}' for (p, m), n in self.input_tokens.items()),
            "# TYPE crossroute_output_tokens_total counter",
            *(f'crossroute_output_tokens_total{{provider="{p}",model="{_q(m)}"}} {n}' for (p, m), n in self.output_tokens.items()),
            "# TYPE crossroute_upstream_errors_total counter",
            *(f'crossroute_upstream_errors_total{{provider="{p}",status="{s}"}} {n}' for (p, s), n in self.errors.items()),
        ]
        return "\n".join(lines) + "\n"


def _q(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
