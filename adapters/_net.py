"""Socket-level failures mapped to adapter errors, the same for every protocol."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TypeVar

from mailgate.domain.addresses import NotPublic, Resolver, resolve
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import (
    MailboxError,
    MailboxHostNotAllowed,
    MailboxTimeout,
    MailboxTLSError,
    MailboxUnreachable,
)

T = TypeVar("T")


def set_nodelay(sock: socket.socket | None) -> None:
    """Nagle plus delayed ACKs can stall each command ~40 ms; turn Nagle off."""
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextmanager
def network_errors(host: str, port: int) -> Iterator[None]:
    """Translate socket, DNS and TLS exceptions into adapter errors with a plain message."""
    where = f"{host}:{port}"
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise MailboxTLSError(
            f"TLS certificate of {where} not trusted: {exc.verify_message}"
        ) from exc
    except ssl.SSLError as exc:
        raise MailboxTLSError(f"TLS handshake with {where} failed: {exc.reason}") from exc
    except socket.gaierror as exc:
        raise MailboxUnreachable(f"host {host} does not resolve: {exc.strerror}") from exc
    except TimeoutError as exc:
        raise MailboxTimeout(f"{where} did not answer in time") from exc
    except ConnectionError as exc:
        raise MailboxUnreachable(f"cannot connect to {where}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise MailboxUnreachable(f"cannot connect to {where}: {exc.strerror or exc}") from exc


def accepts_connections(
    endpoint: MailboxEndpoint, timeout: float, resolver: Resolver = socket.getaddrinfo
) -> bool:
    """Whether the server accepts a TCP connection now, reached as every connection is (the
    address policy included); nothing is said on it. A watcher probes an absent server so."""

    def touch(address: str) -> None:
        socket.create_connection((address, endpoint.port), timeout=timeout).close()

    try:
        connect_checked(endpoint, touch, resolver)
    except (OSError, MailboxError):
        return False
    return True


def connect_checked(
    endpoint: MailboxEndpoint, connect: Callable[[str], T], resolver: Resolver
) -> T:
    """Resolve the endpoint's host once, refuse it by the endpoint's address policy, then
    ``connect`` to each of exactly those addresses in turn until one answers (as
    ``socket.create_connection`` does with a name): never to a second lookup of the name.
    A TLS or protocol failure is the server's answer and is raised at once."""
    try:
        addresses = resolve(
            endpoint.host, endpoint.port, allow_private=endpoint.allow_private, resolver=resolver
        )
    except NotPublic as exc:
        raise MailboxHostNotAllowed(
            f"the mail server host {exc}; this deployment refuses such hosts "
            "(MAILGATE_ALLOW_PRIVATE_MAILBOXES=false)"
        ) from None
    except UnicodeError as exc:
        raise MailboxUnreachable(f"host {endpoint.host!r} is not a valid name") from exc
    for address in addresses[:-1]:
        try:
            return connect(address)
        except ssl.SSLError:
            raise
        except OSError:  # refused, unreachable, timed out: the next address may answer
            continue
    return connect(addresses[-1])


class Deadline:
    """A watchdog for one operation on a connection: when it is not done after ``seconds``,
    the socket is shut down, so a read blocked on a silent server, or one that trickles its
    answer a byte at a time (which no per-read timeout ends), returns at once and the
    operation fails. ``expired`` then tells the caller why, and the connection must be
    dropped: it is out of step, or gone.

    One watchdog thread serves every deadline of the process (:class:`_Watchdog`): entering
    and leaving one is a heap push and a flag, not a thread started and stopped per
    operation (that cost ~0.5 ms of CPU a request, most of it waking the timer thread)."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock, self.seconds = sock, seconds
        self.expired = False
        self.done = False  # left in time: the watchdog must not touch the socket any more

    def _expire(self) -> None:
        """Called by the watchdog, under its lock, only while ``done`` is False."""
        self.expired = True
        # socket.socket's own shutdown: an SSLSocket's would unset its TLS state under the
        # reading thread; this only ends the stream beneath it (already closed: nothing to do)
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def __enter__(self) -> Deadline:
        _WATCHDOG.watch(self, time.monotonic() + self.seconds)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _WATCHDOG.release(self)


class CommandDeadlines:
    """:class:`Deadline` for a connection that runs many commands, each to be answered within
    ``seconds``: ``with deadlines("RETR"):`` around one (a pipelined answer counts from the
    one before). When one is not done in time the socket is shut down, ``expired`` is set and
    ``command`` names it; the connection is then gone. Each command is a :class:`Deadline` on
    the process's one watchdog, so a sync of thousands of commands starts no thread."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock, self.seconds = sock, seconds
        self.expired = False
        self.command: str | None = None

    @contextmanager
    def __call__(self, command: str) -> Iterator[None]:
        self.command = command
        deadline = Deadline(self.sock, self.seconds)
        try:
            with deadline:
                yield
        finally:
            self.expired = self.expired or deadline.expired

    def overdue(self) -> MailboxTimeout:
        """The error for the command that ran out of time (the request answers 504)."""
        return MailboxTimeout(
            f"the mail server did not finish answering {self.command or 'a command'} within "
            f"{self.seconds:g} s"
        )


class _Watchdog:
    """The thread behind every :class:`Deadline`: a heap of (when, deadline), woken only when
    a new deadline comes due before all the others. A deadline left in time is only marked
    done; the heap drops it when it comes due (so it holds at most the deadlines of the last
    ``seconds``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Deadline]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline, when: float) -> None:
        with self._lock:
            first = not self._heap or when < self._heap[0][0]
            heapq.heappush(self._heap, (when, next(self._counter), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="deadline-watchdog", daemon=True
                )
                self._thread.start()
            elif first:
                self._wake.notify()

    def release(self, deadline: Deadline) -> None:
        with self._lock:
            deadline.done = True

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].done):
                    _, _, deadline = heapq.heappop(self._heap)
                    if not deadline.done:
                        deadline.done = True
                        deadline._expire()
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG = _Watchdog()
