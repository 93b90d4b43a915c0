"""A small bounded pool of logged-in IMAP connections for one account.

A request borrows a connection for one operation and gives it back, so a long download
(which borrows per chunk) never makes a list wait. A connection that broke while idle
(server timeout, restart, an untagged BYE) is replaced and the operation retried once,
transparently.

Every operation passes :meth:`ImapPool.run`, so this is where an answer the adapter cannot
read becomes ``mailbox-protocol-error`` (HTTP 502) instead of a 500: whatever such an answer
makes escape the operation (:data:`adapters.imap.connect.MALFORMED`) names the command and
the server, is logged with the connection's last lines, and the connection is discarded,
since its stream may be out of step. The next request gets a fresh one. Errors of our own
(``mailgate.domain.errors``) and the refusals callers handle never reach this point.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from imapclient import IMAPClient

from mailgate.adapters._net import Deadline
from mailgate.adapters.imap import wire
from mailgate.adapters.imap.connect import (
    MALFORMED,
    garbled,
    logout_quietly,
    open_imap,
    protocol_error,
)
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import MailboxTimeout, MailboxUnreachable

T = TypeVar("T")
log = logging.getLogger("mailgate.imap")

# What a dropped or dead connection raises mid-command; imaplib raises abort for an untagged
# BYE too (RFC 3501 section 7.1.5), before or after the command's tagged answer.
BROKEN = (imaplib.IMAP4.abort, ConnectionError, EOFError, ssl.SSLError, socket.timeout, OSError)


class ImapPool:
    def __init__(
        self,
        endpoint: MailboxEndpoint,
        size: int = 4,
        max_idle: float = 240.0,
        opener: Callable[[MailboxEndpoint], IMAPClient] = open_imap,
    ) -> None:
        """``opener`` opens a logged-in connection (connect.open_imap; the pool's unit tests
        hand it connections of their own)."""
        self.endpoint = endpoint
        self.opener = opener
        self.max_idle = max_idle
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[tuple[float, IMAPClient]] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, operation: Callable[[IMAPClient], T]) -> T:
        """Run ``operation`` on a pooled connection; retry once on a fresh one if it broke."""
        if not self._slots.acquire(timeout=self.endpoint.connect_timeout * 2):
            raise MailboxTimeout("all connections to the mailbox are busy; try again")
        try:
            client, reused = self._checkout()
            try:
                return self._attempt(client, operation)
            except BROKEN as exc:
                if not reused:
                    raise _as_mailbox_error(exc) from exc
                log.info(
                    "reconnecting after a dropped connection",
                    extra={"account_id": self.endpoint.account_id, "error": type(exc).__name__},
                )
            try:
                return self._attempt(self.opener(self.endpoint), operation)
            except BROKEN as again:
                raise _as_mailbox_error(again) from again
        finally:
            self._slots.release()

    def _attempt(self, client: IMAPClient, operation: Callable[[IMAPClient], T]) -> T:
        """``operation`` on ``client``, within the endpoint's command deadline; the connection
        goes back to the pool unless it broke (re-raised), answered something unreadable
        (``MailboxProtocolError``) or ran out of time (``MailboxTimeout``, never retried: the
        server is slow, not the connection stale)."""
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        deadline = Deadline(client.socket(), self.endpoint.read_timeout)
        try:
            with deadline:
                result = operation(client)
        except BROKEN as exc:
            self._discard(client)
            # a read timing out is the same deadline, seen by the socket first
            if deadline.expired or isinstance(exc, socket.timeout):
                raise self._overdue(client) from exc
            if garbled(exc):
                raise protocol_error(client, where, exc, self.endpoint.account_id) from exc
            raise
        except MALFORMED as exc:
            self._discard(client)
            if deadline.expired:
                raise self._overdue(client) from exc
            raise protocol_error(client, where, exc, self.endpoint.account_id) from exc
        except BaseException as exc:
            if deadline.expired:  # what the operation made of the dropped connection
                self._discard(client)
                raise self._overdue(client) from exc
            self._checkin(client)
            raise
        if deadline.expired:  # done just as time ran out: the answer stands, the socket is gone
            self._discard(client)
        else:
            self._checkin(client)
        return result

    def _overdue(self, client: IMAPClient) -> MailboxTimeout:
        command = wire.last_command(client) or "a command"
        log.warning(
            "imap command deadline passed; connection dropped",
            extra={
                "account_id": self.endpoint.account_id,
                "command": command,
                "deadline_s": self.endpoint.read_timeout,
            },
        )
        return MailboxTimeout(
            f"the mail server did not finish answering {command} within "
            f"{self.endpoint.read_timeout:g} s"
        )

    def _checkout(self) -> tuple[IMAPClient, bool]:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                since, client = self._idle.pop()
                if now - since < self.max_idle:
                    return client, True
                self._discard(client)
        return self.opener(self.endpoint), False

    def _checkin(self, client: IMAPClient) -> None:
        with self._lock:
            if self._closed:
                self._discard(client)
            else:
                self._idle.append((time.monotonic(), client))

    @staticmethod
    def _discard(client: IMAPClient) -> None:
        with contextlib.suppress(Exception):
            client.shutdown()

    def reap(self) -> int:
        """Log out of the connections idle past ``max_idle`` (a reaper calls this, so an
        account nobody reads holds none); how many went."""
        now = time.monotonic()
        with self._lock:
            stale = [client for since, client in self._idle if now - since >= self.max_idle]
            self._idle = [(since, c) for since, c in self._idle if now - since < self.max_idle]
        for client in stale:
            logout_quietly(client)
        return len(stale)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for _, client in idle:
            logout_quietly(client)


@contextlib.contextmanager
def connection_errors(client: IMAPClient) -> Iterator[None]:
    """Errors on a connection of its own (the watcher's), as the mailbox error a caller
    handles: a dropped or dead connection, or an answer it cannot read (then the caller
    closes the connection: the stream may be out of step)."""
    try:
        yield
    except BROKEN as exc:
        if garbled(exc):
            raise protocol_error(client, f"{client.host}:{client.port}", exc) from exc
        raise _as_mailbox_error(exc) from exc
    except MALFORMED as exc:
        raise protocol_error(client, f"{client.host}:{client.port}", exc) from exc


def _as_mailbox_error(exc: BaseException) -> Exception:
    if isinstance(exc, socket.timeout):
        return MailboxTimeout("the mail server stopped answering")
    return MailboxUnreachable(f"the connection to the mail server broke: {exc}")
