"""`stream --store FILE`: the stream's events and liveness in the run store's SQLite file.

The statements are store/stream_sql.py's (the same on PostgreSQL); the connection, its write
transactions (BEGIN IMMEDIATE, waits bounded as in store/waits.py) and the open-time checks are
the store's own (store/sqlite.py), so a damaged, foreign or newer file is refused here as it is
by `run-preset`, and an older one is migrated the same way. WAL mode and a busy timeout let a
stream write while `run-preset` or `health` use the same file.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from cgpreset.errors import ConfigError
from cgpreset.store.dialect import SQLITE
from cgpreset.store.sqlite import STALE_RUN_MS, SQLiteStore, _pid_alive
from cgpreset.store.stream_sql import StreamWriter


def stream_gone(pid: int | None, updated_at_ms: int, now_ms: int) -> bool:
    """A `running` stream row is a killed stream's: its process is gone; for a row that recorded no
    process id (written before they were), its liveness (written every 10 s) is STALE_RUN_MS old.
    SQLite stores are local files, so the process id is this machine's."""
    if pid is not None:
        return not _pid_alive(int(pid))
    return updated_at_ms < now_ms - STALE_RUN_MS


class StreamStore(StreamWriter):
    """Writes one stream run's events and liveness figures to an SQLite store: the store given
    (`SQLiteStore.stream_sink()`), or one opened for writing here from a path (closed with it)."""

    _d = SQLITE

    def __init__(self, store: SQLiteStore | Path | str) -> None:
        self._owned = not isinstance(store, SQLiteStore)
        self._store = SQLiteStore(Path(store)) if not isinstance(store, SQLiteStore) else store
        self.db_path = self._store.path
        self.run_id: int | None = None
        self.source: str | None = None

    def close(self) -> None:
        if self._owned:
            self._store.close()

    def __enter__(self) -> StreamStore:
        return self

    def _tx(self) -> AbstractContextManager[Any]:
        return self._store._tx(grace=True)  # not a page: a moment past a deadline is allowed

    def _reading(self) -> AbstractContextManager[Any]:
        return self._store._reading()

    def _gone(self, db: Any, run_id: int, pid: int | None, updated_at_ms: int, now_ms: int) -> bool:
        return stream_gone(pid, updated_at_ms, now_ms)

    def _insert_run(self, db: Any, sql: str, values: tuple[Any, ...]) -> int:
        return int(db.execute(sql, values).lastrowid or 0)


def latest_liveness(db_path: Path, *, now: float | None = None) -> dict[str, Any] | None:
    """Liveness of the most recent stream run, for `health`; None when no stream has run (or there
    is no file yet: a read never creates one).

    ConfigError (one line, naming the file) when the path is a directory, or the file is not a
    database, is damaged, or is not a store of this cgpreset (see store.check_store): `health`
    reports it instead of crashing or ignoring it.

    Keys: run_id, status ("running", "stopped", "auth_error", "failed"; "abandoned" for a row still
    `running` whose stream was killed: its process is gone or its liveness is stale), stop_reason, started_at,
    updated_at, ended_at (unix seconds), channels, coins, events, events_per_minute, reconnects,
    pings_sent, pongs_received, last_event_at, last_event_age_s (seconds before `now`, or None
    when no event arrived), summary (the full run summary as last written).
    """
    db_path = Path(db_path)
    if db_path.is_dir():
        raise ConfigError(f"{db_path}: is a directory")
    if not db_path.exists():
        return None
    with SQLiteStore(db_path, readonly=True) as store:
        return store.stream_liveness(now=now)
