"""Quota snapshots: what an upstream's rate-limit headers say is left, read from
its answers and kept in the shared account state beside the cooldowns."""

from __future__ import annotations

from pathlib import Path

from crossroute.routing.quota import quota_from_headers
from crossroute.state.accounts import Quota, SharedAccountState, read_views

NOW = 1_800_000_000.0


def test_openai_headers_give_both_pools_and_the_scarcer_ones_reset() -> None:
    quota = quota_from_headers({
        "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "20",
        "x-ratelimit-limit-tokens": "30000", "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-requests": "1m12s", "x-ratelimit-reset-tokens": "2s"}, now=NOW)
    assert quota == Quota(20, 500, 29000, 30000, NOW + 72, NOW)  # 4% of the requests left: their reset


def test_anthropic_headers_with_rfc3339_resets() -> None:
    quota = quota_from_headers({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:10Z",
        "anthropic-ratelimit-tokens-limit": "40000", "anthropic-ratelimit-tokens-remaining": "1000",
        "anthropic-ratelimit-tokens-reset": "2027-01-15T08:00:30Z"}, now=NOW)  # NOW is 08:00:00Z that day
    assert quota == Quota(49, 50, 1000, 40000, NOW + 30, NOW)  # 2.5% of the tokens left: their reset


def test_anthropic_input_token_pools_stand_in_when_there_is_no_single_token_pool() -> None:
    quota = quota_from_headers({"anthropic-ratelimit-input-tokens-limit": "80000",
                                "anthropic-ratelimit-input-tokens-remaining": "79000"}, now=NOW)
    assert quota == Quota(-1, -1, 79000, 80000, 0.0, NOW)


def test_no_rate_limit_headers_no_quota_and_bad_numbers_read_as_unknown() -> None:
    assert quota_from_headers({"content-type": "application/json", "x-request-id": "r1"}) is None
    quota = quota_from_headers({"x-ratelimit-remaining-requests": "-3", "x-ratelimit-limit-requests": "1e9",
                                "x-ratelimit-remaining-tokens": "99999999999999999999999",
                                "x-ratelimit-reset-requests": "soon"}, now=NOW)
    assert quota == Quota(-1, -1, -1, -1, 0.0, NOW)


def test_a_quota_noted_by_one_worker_is_read_by_another_and_by_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "accounts.state"
    one, two = SharedAccountState(path), SharedAccountState(path)
    try:
        assert one.view("p#0").quota is None
        one.note_quota("p#0", Quota(7, 10, 500, 1000, NOW + 30, NOW))
        one.cool("p#0", NOW + 60, "rate_limited")
        two.recovered("p#0")  # clearing the cooldown keeps the quota
        assert two.view("p#0").quota == Quota(7, 10, 500, 1000, NOW + 30, NOW)
        assert two.view("p#0").cooling_until == 0
        assert read_views(path, ["p#0", "p#1"])["p#0"].quota == Quota(7, 10, 500, 1000, NOW + 30, NOW)
        assert read_views(path, ["p#0", "p#1"])["p#1"].quota is None
    finally:
        one.close()
        two.close()
