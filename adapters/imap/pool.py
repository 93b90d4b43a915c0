"""A small bounded pool of logged-in IMAP connections for one account.

A request borrows a connection for one operation and gives it back, so a long download
(which borrows per chunk) never makes a list wait. A connection that broke while idle
(server timeout, restart) is replaced and the operation retried once, transparently.
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

from mailgate.adapters.imap.connect import open_imap
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import MailboxTimeout, MailboxUnreachable

T = TypeVar("T")
log = logging.getLogger("mailgate.imap")

# What a dropped or dead connection raises mid-command.
BROKEN = (imaplib.IMAP4.abort, ConnectionError, EOFError, ssl.SSLError, socket.timeout, OSError)


class ImapPool:
    def __init__(self, endpoint: MailboxEndpoint, size: int = 4, max_idle: float = 240.0) -> None:
        self.endpoint = endpoint
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
                result = operation(client)
            except BROKEN as exc:
                self._discard(client)
                if not reused:
                    raise _as_mailbox_error(exc) from exc
                log.info(
                    "reconnecting after a dropped connection",
                    extra={"account_id": self.endpoint.account_id, "error": type(exc).__name__},
                )
                client = open_imap(self.endpoint)
                try:
                    result = operation(client)
                except BROKEN as again:
                    self._discard(client)
                    raise _as_mailbox_error(again) from again
                except BaseException:
                    self._checkin(client)
                    raise
            except BaseException:
                self._checkin(client)
                raise
            self._checkin(client)
            return result
        finally:
            self._slots.release()

    def _checkout(self) -> tuple[IMAPClient, bool]:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                since, client = self._idle.pop()
                if now - since < self.max_idle:
                    return client, True
                self._discard(client)
        return open_imap(self.endpoint), False

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

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for _, client in idle:
            with contextlib.suppress(Exception):
                client.logout()


@contextlib.contextmanager
def connection_errors() -> Iterator[None]:
    """A dropped or dead connection, as the mailbox error a caller handles."""
    try:
        yield
    except BROKEN as exc:
        raise _as_mailbox_error(exc) from exc


def _as_mailbox_error(exc: BaseException) -> Exception:
    if isinstance(exc, socket.timeout):
        return MailboxTimeout("the mail server stopped answering")
    return MailboxUnreachable(f"the connection to the mail server broke: {exc}")
