"""A fault-injection TCP proxy for tests: forwards byte for byte, and cuts, stalls or drops
connections on demand.

``FaultProxy((host, port))`` listens on 127.0.0.1 (``port``) and forwards each accepted
connection to the target, both directions, with two threads per connection. Faults:

* ``cut_after(n)`` / ``cut_when(pattern, extra, nth)`` arm new connections to be cut once
  their server->client stream reaches a point (a byte count, or the end of a pattern plus
  ``extra`` bytes). The client gets exactly the bytes before that point, then the cut.
* ``stall()`` / ``resume()`` stop and restart forwarding on every connection, open or new.
* ``drop_all()`` closes every open connection now.

It can also speak for the server:

* ``answer_instead(command, reply, close=...)`` answers client commands itself (the server
  never sees them), and with ``close=True`` ends the connection (FIN) after the reply.
* ``rewrite(function)`` passes every line of the server's answers (CRLF-terminated, as it
  arrived; literal contents too) through ``function``, which returns what the client gets
  instead: the same line, a changed one, or more lines.
* ``inject(data, close=...)`` sends ``data`` to every open connection's client as if the
  server had said it (an unsolicited ``* BYE``, say), and optionally ends them (FIN).

A cut or drop is an RST on both sides by default (``rst=True``: what a crashed peer or a
middlebox timeout looks like; the client's next read or write fails with ECONNRESET). With
``rst=False`` both sides get an orderly FIN instead (the client reads EOF).
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from .net import LOOPBACK

POLL_INTERVAL = 0.05  # longest a pump waits before it looks at the proxy's state again
CHUNK = 65536
DRAIN_TIMEOUT = 2.0  # how long an RST cut waits for the client to receive what came before
JOIN_TIMEOUT = 5.0
_LINE_END = re.compile(rb"(?<=\r\n)")

try:  # Linux: bytes in a socket's send queue the peer has not acknowledged yet
    import fcntl
    import termios

    _TIOCOUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - not Linux
    _TIOCOUTQ = None


@dataclass(frozen=True)
class _Rule:
    """Where a connection's server->client stream gets cut (fixed when it is accepted)."""

    after: int | None = None
    pattern: bytes | None = None
    extra: int = 0
    nth: int = 1
    rst: bool = True


def _unacked(sock: socket.socket) -> int:
    if _TIOCOUTQ is None:  # pragma: no cover - not Linux
        return 0
    buf = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0")
    count: int = struct.unpack("i", buf)[0]
    return count


def _discard_input(sock: socket.socket) -> None:
    """Read away what the peer sent: closing with unread data would send RST, not FIN."""
    with contextlib.suppress(OSError):
        while sock.recv(CHUNK, socket.MSG_DONTWAIT):
            pass


def _close(sock: socket.socket, rst: bool) -> None:
    with contextlib.suppress(OSError):
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            _discard_input(sock)
    sock.close()


class _Connection:
    """One proxied connection: the owner thread connects to the target, pumps server->client
    and closes both sockets at the end; a second thread pumps client->server."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, rule: _Rule) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.rule = rule
        self.dead = False
        self.rst = True
        self.forwarded_down = 0  # bytes of the server's stream passed to the client
        self._matches = 0
        self._limit = rule.after  # absolute cut offset in the server->client stream
        self._tail = b""  # the last len(pattern) - 1 bytes, for matches across chunks
        self._search_from = 0  # absolute offset where the next match may start
        self._unfinished = b""  # the server's last line without its CRLF yet (rewrite)
        self._lock = threading.Lock()
        self._to_client = threading.Lock()  # one writer to the client at a time
        self._wake_r, self._wake_w = socket.socketpair()
        self.thread = threading.Thread(
            target=self._run, name=f"fault-proxy-{proxy.port}-down", daemon=True
        )

    # -- control (any thread) -----------------------------------------------------------------

    def abort(self, rst: bool = True) -> None:
        """End the connection: the pumps stop within microseconds, the owner closes."""
        with self._lock:
            if self.dead:
                return
            self.dead = True
            self.rst = rst
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def disarm(self) -> None:
        with self._lock:
            self.rule = _Rule()
            self._limit = None

    def inject(self, data: bytes, close: bool) -> None:
        """Send ``data`` to the client as if from the server; then end (FIN) if ``close``."""
        with self._to_client:
            sent = self.dead or self._send(self.client, data, True)
        if close and sent:
            self.abort(rst=False)

    # -- threads ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self.upstream = socket.create_connection(
                    self.proxy.target, timeout=self.proxy.connect_timeout
                )
                for end in (self.client, self.upstream):
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    end.setblocking(False)
            except OSError:  # target down: the client gets a reset
                self.abort(rst=True)
                return
            up = threading.Thread(
                target=self._pump,
                args=(self.client, self.upstream, False),
                name=f"fault-proxy-{self.proxy.port}-up",
                daemon=True,
            )
            up.start()
            self._pump(self.upstream, self.client, True)
            up.join()
        finally:
            for sock in (self.client, self.upstream):
                if sock is not None:
                    _close(sock, self.rst if self.dead else False)
            self._wake_r.close()
            self._wake_w.close()
            self.proxy._forget(self)

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            if down and self._limit == 0:
                self._cut()
                return
            while self._flowing():
                readable, _, _ = select.select([src, self._wake_r], [], [], POLL_INTERVAL)
                if self.dead:
                    return
                if src not in readable:
                    continue
                try:
                    data = src.recv(CHUNK)
                except BlockingIOError:
                    continue
                if not self._flowing():
                    return
                if not data:  # orderly close: pass the FIN on, keep the other direction
                    if down and self._unfinished:
                        with self._to_client:
                            self._send(dst, self._unfinished, down)
                    dst.shutdown(socket.SHUT_WR)
                    return
                cut = False
                if down:
                    data, cut = self._filter(self._rewritten(data))
                    if not data and not cut:
                        continue
                else:
                    reply, close = self.proxy._answer_for(data)
                    if reply is not None:  # the server never sees this command
                        with self._to_client:
                            if not self._send(src, reply, True):
                                return
                        if close:
                            self.abort(rst=False)
                            return
                        continue
                with self._to_client if down else contextlib.nullcontext():
                    if not self._send(dst, data, down):
                        return
                if cut:
                    self._cut()
                    return
        except OSError:
            self.abort(rst=True)  # a peer reset or vanished: the other side gets a reset too

    def _flowing(self) -> bool:
        """Wait while the proxy is stalled; False once the connection is dead."""
        while not self.dead:
            if self.proxy._flowing.wait(POLL_INTERVAL):
                return not self.dead
        return False

    def _send(self, dst: socket.socket, data: bytes, down: bool) -> bool:
        view = memoryview(data)
        while view:
            if not self._flowing():
                return False
            _, writable, _ = select.select([self._wake_r], [dst], [], POLL_INTERVAL)
            if self.dead:
                return False
            if not writable:
                continue
            try:
                sent = dst.send(view)
            except BlockingIOError:
                continue
            view = view[sent:]
            self.proxy._count(sent, down)
        return True

    def _rewritten(self, data: bytes) -> bytes:
        """The server's bytes through the proxy's rewrite function, whole lines at a time (the
        end of a line still without its CRLF waits for the next chunk)."""
        rewrite = self.proxy._rewriter()
        data, self._unfinished = self._unfinished + data, b""
        if rewrite is None:
            return data
        end = data.rfind(b"\r\n") + 2
        data, self._unfinished = data[:end], data[end:]
        return b"".join(rewrite(line) for line in _LINE_END.split(data) if line)

    def _filter(self, data: bytes) -> tuple[bytes, bool]:
        """Trim *data* at the cut point; True when the cut point is reached."""
        with self._lock:
            rule = self.rule
            start = self.forwarded_down
            if rule.pattern is not None and self._matches < rule.nth:
                window = self._tail + data
                base = start - len(self._tail)  # absolute offset of window[0]
                pos = max(0, self._search_from - base)
                while self._matches < rule.nth:
                    found = window.find(rule.pattern, pos)
                    if found < 0:
                        break
                    self._matches += 1
                    pos = found + len(rule.pattern)
                    self._search_from = base + pos
                    if self._matches == rule.nth:
                        at = base + pos + rule.extra
                        self._limit = at if self._limit is None else min(self._limit, at)
                keep = len(rule.pattern) - 1
                self._tail = window[-keep:] if keep else b""
            if self._limit is not None:
                data = data[: max(0, self._limit - start)]
            self.forwarded_down = start + len(data)
            return data, self._limit is not None and self.forwarded_down >= self._limit

    def _cut(self) -> None:
        rst = self.rule.rst
        if rst:  # an RST throws away what the client has not received yet: let it arrive
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while not self.dead and not self.proxy._closing.is_set():
                try:
                    if _unacked(self.client) == 0 or time.monotonic() > deadline:
                        break
                except OSError:
                    break
                select.select([self._wake_r], [], [], 0.001)
        self.abort(rst)


class FaultProxy:
    """A TCP proxy on 127.0.0.1:``port`` to *target* that injects faults (see module doc).

    All controls are thread-safe and take effect while connections are open. Use it as a
    context manager, or call ``close()``.
    """

    def __init__(
        self,
        target: tuple[str, int],
        host: str = LOOPBACK,
        *,
        connect_timeout: float = 5.0,
    ) -> None:
        self.target = target
        self.host = host
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._rule = _Rule()
        self._answer: Callable[[bytes], bytes | None] | None = None
        self._answer_close = False
        self._rewrite: Callable[[bytes], bytes] | None = None
        self._conns: set[_Connection] = set()
        self._accepted = 0
        self._bytes_down = 0
        self._bytes_up = 0
        self._flowing = threading.Event()
        self._flowing.set()
        self._closing = threading.Event()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((host, 0))
        self._server.listen(128)
        self._server.settimeout(POLL_INTERVAL)
        self.port: int = self._server.getsockname()[1]
        self._thread = threading.Thread(
            target=self._serve, name=f"fault-proxy-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    # -- faults -------------------------------------------------------------------------------

    def cut_after(self, n_bytes: int | None, *, rst: bool = True) -> None:
        """New connections get cut once *n_bytes* went server->client (None: no byte limit).

        Replaces an earlier ``cut_after``; a ``cut_when`` stays armed (first to hit cuts)."""
        if n_bytes is not None and n_bytes < 0:
            raise ValueError("n_bytes must be >= 0")
        with self._lock:
            self._rule = _Rule(n_bytes, self._rule.pattern, self._rule.extra, self._rule.nth, rst)

    def cut_when(
        self, pattern: bytes | None, extra: int = 0, *, nth: int = 1, rst: bool = True
    ) -> None:
        """New connections get cut *extra* bytes after the end of the *nth* occurrence of
        *pattern* in the server->client stream (occurrences do not overlap; None: disarm).

        Replaces an earlier ``cut_when``; a ``cut_after`` stays armed (first to hit cuts)."""
        if pattern is not None and not pattern:
            raise ValueError("pattern must not be empty")
        if extra < 0 or nth < 1:
            raise ValueError("extra must be >= 0 and nth >= 1")
        with self._lock:
            self._rule = _Rule(self._rule.after, pattern, extra, nth, rst)

    def answer_instead(
        self,
        command: bytes | Callable[[bytes], bytes | None] | None,
        reply: bytes = b"",
        *,
        close: bool = False,
    ) -> None:
        """Client commands starting with *command* (case-insensitive) are not forwarded;
        the client gets *reply* instead, as if the server had said it (None: disarm). A
        function instead of *command* gets what the client sent and gives the reply, or None
        to forward it (IMAP commands start with a tag that the reply must repeat). With
        *close*, the connection ends (FIN both ways) right after a reply."""
        if isinstance(command, bytes):
            prefix = command.upper()

            def answer(data: bytes) -> bytes | None:
                return reply if data.upper().startswith(prefix) else None

            command = answer
        with self._lock:
            self._answer = command
            self._answer_close = close

    def _answer_for(self, data: bytes) -> tuple[bytes | None, bool]:
        with self._lock:
            answer, close = self._answer, self._answer_close
        return (None if answer is None else answer(data)), close

    def rewrite(self, function: Callable[[bytes], bytes] | None) -> None:
        """Every line the server sends (with its CRLF; literal contents are lines too) goes
        to the client as ``function(line)`` instead, on open and new connections (None:
        disarm). Keep a literal's length when changing a line inside one."""
        with self._lock:
            self._rewrite = function

    def _rewriter(self) -> Callable[[bytes], bytes] | None:
        with self._lock:
            return self._rewrite

    def inject(self, data: bytes, *, close: bool = False) -> None:
        """Send *data* to the client of every open connection, as if the server had sent it
        unasked (an untagged ``* BYE``, a ``* 3 EXISTS``); with *close*, end them (FIN)."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.inject(data, close)
        if close:
            for conn in conns:
                conn.thread.join(JOIN_TIMEOUT)

    def stall(self) -> None:
        """Stop forwarding in both directions, on open and new connections (they stay open;
        bytes wait in the kernel buffers, so the peers see no data and, soon, no window)."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def drop_all(self, *, rst: bool = True) -> None:
        """Close every open connection now; return once they are closed."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.abort(rst)
        for conn in conns:
            conn.thread.join(JOIN_TIMEOUT)

    def reset(self) -> None:
        """Plain forwarding again: no cut rules (open connections are disarmed too), no stall,
        no answers or rewrites of the proxy's own."""
        with self._lock:
            self._rule = _Rule()
            self._answer = None
            self._answer_close = False
            self._rewrite = None
            conns = list(self._conns)
        for conn in conns:
            conn.disarm()
        self._flowing.set()

    # -- counters -----------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    @property
    def bytes_down(self) -> int:
        """Bytes forwarded server->client, all connections together.

        Counted when the kernel took them, so a client may read bytes a moment before they
        are counted; once a connection is closed (the client saw EOF or the reset), its
        bytes are all counted."""
        with self._lock:
            return self._bytes_down

    @property
    def bytes_up(self) -> int:
        """Bytes forwarded client->server, all connections together."""
        with self._lock:
            return self._bytes_up

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening and close every connection (RST); returns within seconds."""
        self._closing.set()
        self._thread.join(JOIN_TIMEOUT)
        self._server.close()
        self.drop_all(rst=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if self._closing.is_set():
                    _close(client, rst=True)
                    return
                self._accepted += 1
                conn = _Connection(self, client, self._rule)
                self._conns.add(conn)
            conn.thread.start()

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _count(self, n: int, down: bool) -> None:
        with self._lock:
            if down:
                self._bytes_down += n
            else:
                self._bytes_up += n
