"""How long a store call may wait (store/waits.py), and the PostgreSQL store's guards (store/pg_guard.py):
the watchdog that cuts a call nobody answers, and the reconnects after a lost connection. No server."""

from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgpreset.errors import DeadlineExceededError, ExitCode, StopRequestedError, StoreUnavailableError
from cgpreset.store import waits
from cgpreset.store.pg_guard import Reconnects, Watchdog, retrying
from cgpreset.store.waits import Bound, Waits

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
    with pytest.raises(StopRequestedError):
        w.bound(WHERE)
    b = w.bound(WHERE, grace=True)
    assert (b.lock_s, b.statement_s, b.stopping) == (waits.STOPPING_S, waits.STOPPING_S, True)
    assert isinstance(b.timed_out(WHERE, "waiting for a lock", lock=True), StopRequestedError)


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


# -- reconnects -------------------------------------------------------------------------------------

def _lost() -> StoreUnavailableError:
    return StoreUnavailableError("db: store write failed: connection lost (server closed the connection)",
                                 reconnect=True)


def test_a_lost_connection_is_tried_again_after_each_pause_then_exit_75() -> None:
    pauses: list[float] = []
    dropped: list[int] = []
    calls = 0

    def fails() -> int:
        nonlocal calls
        calls += 1
        raise _lost()

    with pytest.raises(StoreUnavailableError) as err:
        retrying(fails, Reconnects(lambda: None, pauses.append), lambda: dropped.append(1))
    assert calls == 3 and pauses == [0.5, 2.0] and dropped == [1, 1]
    assert not err.value.reconnect and err.value.exit_code == 75  # tried enough: not again, higher up


def test_a_call_that_works_on_the_second_try_returns_its_result() -> None:
    answers = iter([_lost(), 7])

    def flaky() -> int:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    pauses: list[float] = []
    assert retrying(flaky, Reconnects(lambda: None, pauses.append), lambda: None) == 7 and pauses == [0.5]


def test_what_a_reconnect_cannot_help_is_not_retried() -> None:
    pauses: list[float] = []

    def full() -> None:
        raise StoreUnavailableError("db: store write failed: could not extend file: No space left on device")

    with pytest.raises(StoreUnavailableError):
        retrying(full, Reconnects(lambda: None, pauses.append), lambda: None)
    assert pauses == []


def test_the_deadline_comes_before_a_pause() -> None:
    pauses: list[float] = []

    def fails() -> None:
        raise _lost()

    with pytest.raises(DeadlineExceededError, match="the deadline leaves no time to reconnect"):
        retrying(fails, Reconnects(lambda: 0.4, pauses.append), lambda: None)
    assert pauses == []


# -- the watchdog -----------------------------------------------------------------------------------

class _Conn:
    """What the watchdog needs of a connection: its socket's file descriptor."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()


def _read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(10)  # a bound for a broken watchdog, not a wait for time to pass
    return sock.recv(1)


def test_a_call_nobody_answers_is_cut_after_its_bound_and_the_margin() -> None:
    now = [100.0]
    dog = Watchdog(stopping=threading.Event(), clock=lambda: now[0])
    ours, server = socket.socketpair()
    try:
        with dog.watching(_Conn(ours), Bound(1.0, 2.0)) as why:  # type: ignore[arg-type]
            assert why == []
            now[0] += 2.0 + 0.5  # the statement's bound and the margin: the server would have answered
            assert _read_until_closed(ours) == b""  # shut down: a blocked read ends at once
            assert why == ["no answer"]
    finally:
        dog.close()
        ours.close()
        server.close()


def test_a_stop_cuts_every_call_in_flight_but_not_the_runs_row_closed_after_it() -> None:
    stop = threading.Event()
    dog = Watchdog(stopping=stop, clock=lambda: 0.0)
    a, a_peer = socket.socketpair()
    b, b_peer = socket.socketpair()
    try:
        with dog.watching(_Conn(a), Bound(60, 300)) as before:  # type: ignore[arg-type]
            stop.set()
            with dog.watching(_Conn(b), Bound(0.5, 0.5, stopping=True)) as after:  # type: ignore[arg-type]
                assert _read_until_closed(a) == b""
                assert before == ["stopping"] and after == []
    finally:
        dog.close()
        for s in (a, a_peer, b, b_peer):
            s.close()


def test_the_watchdog_shuts_down_the_socket_it_was_given_even_after_the_connection_closed_its_own() -> None:
    """It watches a duplicate of the descriptor: a number reused by a new socket is never touched."""
    now = [0.0]
    dog = Watchdog(stopping=threading.Event(), clock=lambda: now[0])
    ours, peer = socket.socketpair()
    try:
        with dog.watching(_Conn(ours), Bound(1, 1)):  # type: ignore[arg-type]
            ours.close()  # what libpq does to a connection it gave up on
            other, other_peer = socket.socketpair()  # may take the freed number
            now[0] = 10.0
            assert _read_until_closed(peer) == b""  # the watched socket was shut down...
            other_peer.setblocking(False)
            other.send(b"x")
            assert other_peer.recv(1) == b"x"  # ...and the new one works
            other.close()
            other_peer.close()
    finally:
        dog.close()
        peer.close()
