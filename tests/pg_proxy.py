"""A TCP relay in front of the test PostgreSQL server, for the failures a test cannot ask of the
server itself (the tests never stop or pause the shared server):

- `freeze()`: connections stay open and new ones are accepted, but nothing passes either way,
  as with a server that stopped answering (SIGSTOP, swapping, a network that drops packets);
- `down()`: every connection is cut and new ones are refused, as during a restart or failover.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit, urlunsplit


class PgProxy:
    """Relays 127.0.0.1:<port> to the server of `dsn`; `url` is `dsn` pointed at the relay."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        netloc = parts.netloc.rpartition("@")
        self.url = urlunsplit(parts._replace(netloc=f"{netloc[0]}{netloc[1]}127.0.0.1:{port}"))
        self._flowing = threading.Event()
        self._flowing.set()
        self._accepting = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            if not self._accepting:
                client.close()
                continue
            try:
                server = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._relay, args=(src, dst), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                self._flowing.wait()  # frozen: held here, the connection stays open
                dst.sendall(data)
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def down(self) -> None:
        """Cut every connection and refuse new ones (the listener stays bound: nothing else takes the port)."""
        self._accepting = False
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.thaw()
        self.down()
        self._listener.close()


@contextmanager
def pg_proxy(dsn: str) -> Iterator[PgProxy]:
    proxy = PgProxy(dsn)
    try:
        yield proxy
    finally:
        proxy.close()
