"""Small TCP helpers for tests: free ports, refused ports and a listener that never speaks."""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self

LOOPBACK = "127.0.0.1"

# Sockets bound (but never listening) by closed_port(): they keep their port reserved for the
# life of the test process, so a connect() to it is refused and nobody else can take it.
_reserved: list[socket.socket] = []


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on *host* that nothing listens on right now (may be taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port(host: str = LOOPBACK) -> int:
    """Return a port on *host* where connect() is refused, for as long as this process lives."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))  # bound without listen(): the kernel answers SYN with RST
    _reserved.append(sock)
    port: int = sock.getsockname()[1]
    return port


class SilentListener:
    """A TCP server on loopback that accepts connections and never sends a byte.

    Accepted connections stay open until close(); use it for connect/greeting timeouts.
    """

    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((host, 0))
        self._server.listen(128)
        self._server.settimeout(0.05)
        self.port: int = self._server.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-listener", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def accepted(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return len(self._conns)

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._server.close()
        with self._lock:
            for conn in self._conns:
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
