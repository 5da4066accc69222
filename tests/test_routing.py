"""Routing on a fake clock: strategies, cooldowns that end, backoff caps and
every form of upstream reset time."""

from __future__ import annotations

import email.utils
from collections import Counter
from typing import Any

import pytest

from crossroute import ir
from crossroute.accounts import Account, ApiKey
from crossroute.config import ConfigError, ProviderConfig, RoutingConfig, Strategy, parse_config
from crossroute.formats import FORMATS
from crossroute.providers import KINDS
from crossroute.routing import Route, Router, cooldown
from crossroute.routing.strategies import sticky_key
from crossroute.server.metrics import Metrics
from crossroute.state.accounts import SharedAccountState

NOW = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def make_router(strategy: Strategy = "round-robin", accounts: list[Account] | None = None,
                clock: Clock | None = None) -> tuple[Router, Route, Clock]:
    provider = KINDS["openai"](ProviderConfig(name="p", kind="openai", base_url="http://127.0.0.1:9/v1"))
    accounts = accounts or [account(n) for n in range(3)]
    clock = clock or Clock()
    router = Router({"p": accounts}, SharedAccountState(), RoutingConfig(strategy=strategy), {}, Metrics(), clock)
    return router, Route(provider, "m"), clock


def account(n: int, **options: Any) -> Account:
    return Account(f"p#{n}", "p", f"key {n}", ApiKey(f"k{n}"), **options)


def picks(router: Router, route: Route, times: int, key: str = "") -> list[str]:
    chosen = []
    for _ in range(times):
        first = router.candidates("m", [route], lambda: key)[0]
        chosen.append(first.account_id)
        router.lease(first, "m", False).release(None)
    return chosen


def rate_limit(router: Router, route: Route, n: int, reset: float | None = None, status: int = 429) -> None:
    candidate = next(c for c in router.candidates("m", [route], lambda: "") if c.account_id == f"p#{n}")
    router.lease(candidate, "m", False).failed(ir.GatewayError(status, "slow down", retry_after=reset))


# ---------------------------------------------------------------- strategies


def test_round_robin_takes_turns_and_skips_a_resting_account() -> None:
    router, route, clock = make_router()
    assert picks(router, route, 6) == ["p#0", "p#1", "p#2"] * 2
    rate_limit(router, route, 1, reset=30)
    assert "p#1" not in picks(router, route, 6)
    clock.now += 30
    assert Counter(picks(router, route, 6)) == {"p#0": 2, "p#1": 2, "p#2": 2}


def test_retries_follow_the_first_pick_and_leave_out_resting_accounts() -> None:
    router, route, _ = make_router()
    rate_limit(router, route, 2, reset=10)
    order = [c.account_id for c in router.candidates("m", [route], lambda: "")]
    assert sorted(order) == ["p#0", "p#1"]


def test_fill_first_uses_the_best_priority_until_it_rests() -> None:
    router, route, _ = make_router("fill-first", [account(0, priority=5), account(1, priority=1), account(2, priority=1)])
    assert picks(router, route, 4) == ["p#1"] * 4
    rate_limit(router, route, 1, reset=60)
    assert picks(router, route, 2) == ["p#2"] * 2


def test_least_busy_picks_the_account_with_fewest_in_flight() -> None:
    router, route, _ = make_router("least-busy")
    held = [router.lease(c, "m", True) for c in router.candidates("m", [route], lambda: "")[:1]]
    busy = held[0].candidate.account_id
    second = router.candidates("m", [route], lambda: "")[0]
    assert second.account_id != busy
    held.append(router.lease(second, "m", True))
    third = router.candidates("m", [route], lambda: "")[0].account_id
    assert third not in {busy, second.account_id}
    for lease in held:
        lease.release(None)
    assert router.state.in_flight(busy) == 0


def test_weighted_is_smooth_and_proportional() -> None:
    router, route, _ = make_router("weighted", [account(0, weight=5), account(1, weight=1), account(2, weight=1)])
    sequence = picks(router, route, 7)
    assert Counter(sequence) == {"p#0": 5, "p#1": 1, "p#2": 1}
    assert sequence[:2] != ["p#0", "p#0"] or sequence[2] != "p#0"  # not five in a row
    assert Counter(picks(router, route, 70)) == {"p#0": 50, "p#1": 10, "p#2": 10}


def test_sticky_keeps_a_conversation_on_its_account_and_moves_only_while_it_rests() -> None:
    router, route, clock = make_router("sticky", [account(n) for n in range(5)])
    homes = {key: picks(router, route, 3, key) for key in ("conv-a", "conv-b", "conv-c", "conv-d")}
    assert all(len(set(seen)) == 1 for seen in homes.values())
    assert len({seen[0] for seen in homes.values()}) > 1  # conversations spread over the accounts
    home = homes["conv-a"][0]
    rate_limit(router, route, int(home[-1]), reset=20)
    moved = picks(router, route, 3, "conv-a")
    assert len(set(moved)) == 1 and moved[0] != home
    others = {key: picks(router, route, 1, key)[0] for key in ("conv-b", "conv-c", "conv-d")}
    assert all(others[k] == homes[k][0] for k in others if homes[k][0] != home)  # the rest did not move
    clock.now += 20
    assert picks(router, route, 1, "conv-a") == [home]


def test_sticky_keys_name_the_conversation() -> None:
    assert sticky_key({"prompt_cache_key": "abc", "input": "x"}, {}) == "cache:abc"
    assert sticky_key({"metadata": {"user_id": "u1"}, "messages": []}, {}) == "user:u1"
    assert sticky_key({"messages": [{"role": "user", "content": "hi"}]}, {"x-session-id": "s9"}) == "session:s9"
    first = sticky_key({"messages": [{"role": "user", "content": "hi"}]}, {})
    later = sticky_key({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                                     {"role": "user", "content": "more"}]}, {})
    assert first and later == first  # the next turn of the same conversation keeps its key
    assert sticky_key({"messages": [{"role": "user", "content": "hello"}]}, {}) != first
    chain = [ir.Message("user", [ir.Text("hello")])]
    assert sticky_key({"input": "next turn"}, {}, chain) == sticky_key({"input": "other turn"}, {}, chain)


def test_disabled_accounts_and_excluded_models_are_not_candidates() -> None:
    router, route, _ = make_router(accounts=[account(0, disabled=True), account(1, excluded_models=("m*",)),
                                             account(2)])
    assert picks(router, route, 3) == ["p#2"] * 3


# ---------------------------------------------------------------- cooldowns


def test_a_cooldown_ends_at_the_reset_time_and_not_later() -> None:
    router, route, clock = make_router(accounts=[account(0)])
    rate_limit(router, route, 0, reset=37)
    clock.now += 36.9
    with pytest.raises(ir.GatewayError) as caught:
        router.candidates("m", [route], lambda: "")
    assert caught.value.status == 429 and caught.value.retry_after == 1
    clock.now += 0.1
    assert picks(router, route, 1) == ["p#0"]


def test_every_account_resting_is_a_429_with_the_soonest_reset_rounded_up() -> None:
    router, route, _ = make_router()
    for n, reset in ((0, 90), (1, 12.2), (2, 3600)):
        rate_limit(router, route, n, reset=reset)
    with pytest.raises(ir.GatewayError) as caught:
        router.candidates("m", [route], lambda: "")
    assert (caught.value.status, caught.value.retry_after, caught.value.kind) == (429, 13, "rate_limit")


def test_backoff_doubles_per_strike_up_to_its_cap_and_a_success_forgives() -> None:
    router, route, clock = make_router(accounts=[account(0)])
    waits = []
    for _ in range(10):
        rate_limit(router, route, 0)
        waits.append(router.state.cooling_until("p#0") - clock.now)
        clock.now += waits[-1]
    first, cap = cooldown.BACKOFF["rate_limited"]
    assert waits[:4] == [first, first * 2, first * 4, first * 8]
    assert max(waits) == cap and waits[-1] == cap
    router.candidates("m", [route], lambda: "")  # ready again at the end of the last wait
    lease = router.lease(router.candidates("m", [route], lambda: "")[0], "m", False)
    lease.succeeded()
    lease.release(None)
    rate_limit(router, route, 0)
    assert router.state.cooling_until("p#0") - clock.now == first


def test_quota_rests_longer_than_a_rate_limit_and_auth_failures_rest_too() -> None:
    assert cooldown.rest_seconds("quota_exhausted", None, 1) > cooldown.rest_seconds("rate_limited", None, 1)
    assert cooldown.rest_seconds("quota_exhausted", None, 50) == cooldown.BACKOFF["quota_exhausted"][1]
    assert cooldown.reason_for(ir.GatewayError(429, "x", kind="billing")) == "quota_exhausted"
    assert cooldown.reason_for(ir.GatewayError(429, "x", code="insufficient_quota")) == "quota_exhausted"
    assert cooldown.reason_for(ir.GatewayError(402, "x")) == "quota_exhausted"
    assert cooldown.reason_for(ir.GatewayError(429, "x")) == "rate_limited"
    assert cooldown.reason_for(ir.GatewayError(401, "x")) == "auth"
    assert cooldown.reason_for(ir.GatewayError(400, "x")) is None
    assert cooldown.rest_seconds("server", None, 9) == 0.0  # moves on, does not rest
    assert cooldown.rest_seconds("rate_limited", 30 * 24 * 3600.0, 1) == cooldown.MAX_RESET


# ---------------------------------------------------------------- reset times


@pytest.mark.parametrize("headers,expected", [
    ({"retry-after": "37"}, 37.0),
    ({"retry-after": email.utils.formatdate(NOW + 90, usegmt=True)}, 90.0),
    ({"x-ratelimit-reset-requests": "1m30s"}, 90.0),
    ({"x-ratelimit-reset-tokens": "6ms"}, 0.006),
    ({"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "1m0s"}, 60.0),
    ({"x-ratelimit-reset-requests": "20s", "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-tokens": "1m0s", "x-ratelimit-remaining-tokens": "5000"}, 20.0),
    ({"anthropic-ratelimit-requests-reset": "1970-01-12T13:47:30Z"}, 50.0),
    ({"anthropic-ratelimit-tokens-reset": "1970-01-12T13:48:20+00:00"}, 100.0),
    ({"anthropic-ratelimit-input-tokens-reset": "1970-01-12T13:46:45Z",
      "anthropic-ratelimit-output-tokens-reset": "1970-01-12T13:46:50Z",
      "anthropic-ratelimit-output-tokens-remaining": "0"}, 10.0),
    ({"retry-after": "5", "x-ratelimit-reset-requests": "1m"}, 5.0),
    ({"x-ratelimit-reset-requests": "soon"}, None),
    ({}, None),
])
def test_reset_time_from_headers(headers: dict[str, str], expected: float | None) -> None:
    found = cooldown.reset_from_headers(headers, now=NOW)
    assert found == pytest.approx(expected) if expected is not None else found is None


def test_gemini_retry_delay_and_daily_quota_from_the_error_body() -> None:
    body = (b'{"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",'
            b' "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId":'
            b' "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},'
            b' {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}')
    error = FORMATS["gemini"].parse_error(429, body)
    assert error.retry_after == 37.0
    assert cooldown.is_daily_quota(body)
    assert not cooldown.is_daily_quota(body.replace(b"PerDay", b"PerMinute"))


@pytest.mark.parametrize("error,expected", [
    (ir.GatewayError(400, "This model's maximum context length is 8192 tokens", code="context_length_exceeded"), True),
    (ir.GatewayError(400, "prompt is too long: 210000 tokens > 200000 maximum"), True),
    (ir.GatewayError(400, "The input token count (1200000) exceeds the maximum number of tokens allowed"), True),
    (ir.GatewayError(400, "messages: field required"), False),
    (ir.GatewayError(429, "too many tokens per minute"), False),
])
def test_context_length_errors_are_recognised(error: ir.GatewayError, expected: bool) -> None:
    assert cooldown.is_context_length(error) is expected


def test_a_providers_strategy_overrides_the_routing_default() -> None:
    router, route, _ = make_router("round-robin", [account(0, priority=2), account(1, priority=1), account(2)])
    router._strategy_of = {"p": "fill-first"}
    assert picks(router, route, 3) == ["p#2"] * 3  # priority 0 first


def test_routing_keys_in_the_config() -> None:
    config = parse_config("routing:\n  strategy: sticky\n  max_attempts: 5\n  fallbacks: {a: [b, c]}\n"
                          "providers:\n  - {name: p, kind: openai, api_keys: [k], strategy: least-busy, models: [a, b, c]}\n")
    assert (config.routing.strategy, config.routing.max_attempts, config.routing.fallbacks) == \
        ("sticky", 5, {"a": ["b", "c"]})
    assert config.providers[0].strategy == "least-busy"
    assert RoutingConfig().strategy == "round-robin" and RoutingConfig().max_attempts == 3
    with pytest.raises(ConfigError, match=r"<config>:3: providers\[0\]\.strategy"):
        parse_config("providers:\n  - name: p\n    strategy: random\n    kind: openai\n")


def test_a_lease_dropped_without_release_still_leaves_the_in_flight_count() -> None:
    """A stream reply never started (its client left first) never runs its generator's finally."""
    router, route, _ = make_router(accounts=[account(0)])
    lease = router.lease(router.candidates("m", [route], lambda: "")[0], "m", True)
    assert router.state.in_flight("p#0") == 1
    del lease
    assert router.state.in_flight("p#0") == 0
