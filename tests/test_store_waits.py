"""How long a store call may wait (store/waits.py). No server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgpreset.api.cancel import CancelledError
from cgpreset.errors import DeadlineExceededError, ExitCode, StoreUnavailableError
from cgpreset.store import waits
from cgpreset.store.waits import Waits

WHERE = "s.db: store write failed"
seconds = st.floats(min_value=-1000, max_value=1000, allow_nan=False)


# -- the limits -------------------------------------------------------------------------------------

@given(left=st.none() | seconds, grace=st.booleans())
def test_a_call_never_waits_past_the_caps_nor_a_page_past_the_deadline(left: float | None, grace: bool) -> None:
    w = Waits(lambda: left, stopping=lambda: False)
    if left is not None and left <= 0 and not grace:
        with pytest.raises(DeadlineExceededError):  # refused before the store is touched
            w.bound(WHERE, grace=grace)
        return
    b = w.bound(WHERE, grace=grace)
    assert 0 < b.lock_s <= waits.LOCK_CAP_S and 0 < b.statement_s <= waits.STATEMENT_CAP_S
    if left is None:
        assert (b.lock_s, b.statement_s, b.left_s) == (waits.LOCK_CAP_S, waits.STATEMENT_CAP_S, None)
    elif grace:  # reads, the runs row: a moment past the deadline, however late
        assert b.statement_s == min(max(left + waits.GRACE_S, waits.MIN_WAIT_S), waits.STATEMENT_CAP_S)
    else:
        assert b.statement_s == min(left, waits.STATEMENT_CAP_S) and b.lock_s <= left


@given(left=st.none() | seconds, lock=st.booleans())
def test_running_out_is_the_deadline_when_the_deadline_set_the_limit_else_a_blocked_store(
        left: float | None, lock: bool) -> None:
    b = Waits(lambda: left, stopping=lambda: False).bound(WHERE, grace=True)
    err = b.timed_out(WHERE, "waiting for a lock", lock=lock)
    limit = b.lock_s if lock else b.statement_s
    if b.left_s is not None and limit >= b.left_s:
        assert type(err) is DeadlineExceededError and err.exit_code == ExitCode.FINDINGS
        assert str(err) == f"{WHERE}: deadline reached waiting for the store"
    else:
        assert type(err) is StoreUnavailableError and err.exit_code == ExitCode.TEMPFAIL == 75
        assert str(err) == f"{WHERE}: waiting for a lock for {limit:g} s: the store is blocked (retry later)"


def test_once_stopping_a_page_stops_at_once_and_the_runs_row_gets_a_moment() -> None:
    w = Waits(lambda: 100.0, stopping=lambda: True)
    with pytest.raises(CancelledError):
        w.bound(WHERE)
    b = w.bound(WHERE, grace=True)
    assert (b.lock_s, b.statement_s, b.stopping) == (waits.STOPPING_S, waits.STOPPING_S, True)
    assert isinstance(b.timed_out(WHERE, "waiting for a lock", lock=True), CancelledError)


def test_once_a_page_found_the_store_down_the_next_pages_fail_at_once_for_a_lock_caps_time() -> None:
    now = [0.0]
    w = Waits(lambda: None, lock_cap_s=30, stopping=lambda: False, clock=lambda: now[0])
    w.down(StoreUnavailableError(f"{WHERE}: waiting for a lock for 30 s: the store is blocked (retry later)"))
    now[0] = 29.0
    with pytest.raises(StoreUnavailableError, match="the store is blocked"):
        w.bound(WHERE)  # without waiting another 30 s
    assert w.bound(WHERE, grace=True).lock_s == 30  # the runs row still tries
    now[0] = 30.0
    assert w.bound(WHERE).lock_s == 30  # a lock cap later, pages try again
