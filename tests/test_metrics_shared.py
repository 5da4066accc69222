"""/metrics of `crossroute serve --workers 2` shows the host's totals whichever
worker answers the scrape: counters, latency histograms and each account's state.
Requests and scrapes go out on fresh connections, so either worker may take each."""

from __future__ import annotations

import http.client
import os
import re
import signal
from pathlib import Path

from crossroute import ir
from crossroute.server.metrics import MAX_MODELS, Metrics
from tests.conftest import CLIENT_KEY
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import free_port
from tests.test_cli import children_of
from tests.test_shutdown import wait_for
from tests.test_store_workers import serving
from tests.test_workers_share_state import KEYS, REQUESTS, ask, write_config

SCRAPES = 4
_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def scrape(port: int) -> dict[tuple[str, str], float]:
    """The samples of one scrape: (name, labels as written) -> value."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", "/metrics", headers={"authorization": f"Bearer {CLIENT_KEY}"})
        response = conn.getresponse()
        text = response.read().decode()
        assert response.status == 200, text
    finally:
        conn.close()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            found = _SAMPLE.match(line)
            assert found, f"not a Prometheus sample: {line!r}"
            samples[(found[1], found[2] or "")] = float(found[3])
    return samples


def total(samples: dict[tuple[str, str], float], name: str, label: str = "") -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and label in labels)


def test_every_scrape_shows_the_totals_of_both_workers_with_cumulative_histograms(tmp_path: Path) -> None:
    port = free_port()
    with FakeUpstream(api_key=None) as fake, serving(write_config(tmp_path, fake), port, workers=2):
        assert [ask(port) for _ in range(REQUESTS)] == [200] * REQUESTS
        for samples in [scrape(port) for _ in range(SCRAPES)]:
            assert total(samples, "crossroute_requests_total") == REQUESTS
            assert total(samples, "crossroute_account_requests_total") == REQUESTS
            assert total(samples, "crossroute_input_tokens_total") > 0
            for histogram in ("crossroute_time_to_first_byte_seconds", "crossroute_request_duration_seconds"):
                buckets = [v for (n, labels), v in samples.items() if n == histogram + "_bucket"]
                assert buckets == sorted(buckets), "buckets are cumulative"
                assert buckets[-1] == total(samples, histogram + "_bucket", 'le="+Inf"') == REQUESTS
                assert total(samples, histogram + "_count") == REQUESTS
                assert total(samples, histogram + "_sum") > 0


def test_a_rate_limited_account_shows_cooling_with_its_reason_and_no_key(tmp_path: Path) -> None:
    port = free_port()
    with FakeUpstream(api_key=None) as fake, serving(write_config(tmp_path, fake), port, workers=2):
        fake.script(Turn(error=(429, "slow down"), retry_after=120))
        assert ask(port) == 200
        for _ in range(SCRAPES):
            samples = scrape(port)
            cooling = {labels: v for (n, labels), v in samples.items() if n == "crossroute_account_cooling"}
            assert cooling == {'account="pool#0",reason="rate_limited"': 1, 'account="pool#1",reason=""': 0,
                               'account="pool#2",reason=""': 0}
            assert 60 < samples[("crossroute_account_cooldown_seconds_remaining", 'account="pool#0"')] <= 120
            assert samples[("crossroute_upstream_errors_total", 'provider="pool",status="429"')] == 1
            assert total(samples, "crossroute_requests_total", 'status="4xx"') == 1
            assert not any(key in labels for (_, labels) in samples for key in KEYS)


def test_a_worker_killed_and_replaced_keeps_the_totals(tmp_path: Path) -> None:
    port = free_port()
    with FakeUpstream(api_key=None) as fake, serving(write_config(tmp_path, fake), port, workers=2) as process:
        assert [ask(port) for _ in range(REQUESTS)] == [200] * REQUESTS
        workers = children_of(process.pid)
        assert len(workers) == 2
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: len(children_of(process.pid) - {killed}) == 2, 20, "the killed worker was not replaced")
        assert ask(port) == 200
        for _ in range(SCRAPES):
            assert total(scrape(port), "crossroute_requests_total") == REQUESTS + 1


def test_model_labels_are_bounded_and_escaped() -> None:
    metrics = Metrics()
    usage = ir.Usage(input_tokens=3, output_tokens=2)
    metrics.finished("p", 'a"b\\c\nd', usage, 0.2, 1.0)
    for index in range(MAX_MODELS + 5):
        metrics.finished("p", f"model-{index}", usage, 0.2, 1.0)
    text = metrics.render()
    counted = [line for line in text.splitlines() if line.startswith("crossroute_requests_total")]
    assert len(counted) == MAX_MODELS + 1
    assert 'crossroute_requests_total{provider="p",model="other",status="2xx"} 6' in counted
    assert 'crossroute_requests_total{provider="p",model="a\\"b\\\\c\\nd",status="2xx"} 1' in counted
    metrics.close()
