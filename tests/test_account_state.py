"""The account table every worker of a host shares: one file, mapped by each process."""

from __future__ import annotations

import os
import time
from pathlib import Path

from crossroute.state.accounts import SharedAccountState, state_file_for

LEASES = 20_000


def test_two_openers_of_one_file_see_each_others_changes(tmp_path: Path) -> None:
    one, two = SharedAccountState(tmp_path / "accounts.state"), SharedAccountState(tmp_path / "accounts.state")
    try:
        one.begin("p#0")
        one.cool("p#1", 1234.5, "quota_exhausted")
        assert two.strike("p#1", 429, "rate_limit") == 1
        assert two.in_flight("p#0") == 1 and two.cooling_until("p#1") == 1234.5
        assert [one.next_turn("p"), two.next_turn("p"), one.next_turn("p")] == [0, 1, 2]
        two.end("p#0", 10, 3)
        view = one.view("p#1")
        assert (view.reason, view.strikes, view.last_status, view.last_kind) == ("quota_exhausted", 1, 429,
                                                                                 "rate_limit")
        assert (one.view("p#0").in_flight, one.view("p#0").requests, one.view("p#0").input_tokens) == (0, 1, 10)
        one.recovered("p#1")
        assert two.cooling_until("p#1") == 0 and two.view("p#1").strikes == 0
    finally:
        one.close()
        two.close()


def test_a_forked_worker_shares_the_cursor_and_in_flight_counts(tmp_path: Path) -> None:
    path = tmp_path / "accounts.state"
    parent = SharedAccountState(path)
    try:
        pid = os.fork()
        if pid == 0:  # the child opens the file itself, as a worker does
            child = SharedAccountState(path)
            for _ in range(500):
                child.next_turn("p")
                child.begin("p#0")
            os._exit(0)
        for _ in range(500):
            parent.next_turn("p")
        os.waitpid(pid, 0)
        assert parent.next_turn("p") == 1000  # no increment lost to the other process
        assert parent.in_flight("p#0") == 500
    finally:
        parent.close()


def test_cooldowns_outlive_a_restart_and_in_flight_counts_do_not(tmp_path: Path) -> None:
    path = state_file_for(tmp_path / "state.sqlite3")
    first = SharedAccountState(path)
    first.begin("p#0")
    first.cool("p#0", time.time() + 600, "rate_limited")
    first.close()  # a run that ended (or was killed) with a request in flight
    again = SharedAccountState(path)
    try:
        assert again.in_flight("p#0") == 0
        assert again.cooling_until("p#0") > time.time()
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    finally:
        again.close()


def test_reset_forgets_cooldowns_and_strikes_but_not_totals(tmp_path: Path) -> None:
    state = SharedAccountState(tmp_path / "accounts.state")
    try:
        state.begin("p#0")
        state.end("p#0", 5, 5)
        state.strike("p#0", 401, "authentication")
        state.cool("p#0", time.time() + 300, "auth")
        state.reset()
        view = state.view("p#0")
        assert (view.cooling_until, view.strikes, view.requests) == (0.0, 0, 1)
    finally:
        state.close()


def test_the_cost_of_a_lease(tmp_path: Path, capsys: object) -> None:
    """Reported, not asserted (the machine is shared): CPU per acquire + release,
    round-robin over 8 accounts, as a request pays it."""
    from tests.test_routing import account, make_router

    router, route, _ = make_router(accounts=[account(n) for n in range(8)])
    router.state = SharedAccountState(tmp_path / "accounts.state")
    started = time.process_time()
    for _ in range(LEASES):
        candidate = router.candidates("m", [route], lambda: "")[0]
        lease = router.lease(candidate, "m", False)
        lease.succeeded()
        lease.release(None)
    per_lease = (time.process_time() - started) / LEASES * 1e6
    print(f"\nlease (pick of 8, acquire, outcome, release): {per_lease:.1f} us CPU")
    assert router.state.view("p#3").requests == LEASES // 8
