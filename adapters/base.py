"""The one interface every protocol adapter implements. Routers only ever see this."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from mailgate.domain.ids import MessageLocation
from mailgate.domain.mail import (
    BatchResult,
    Download,
    Folder,
    Message,
    MessageChange,
    MessageFilter,
    MessagePage,
    MessageSummary,
)


class MailAdapter(Protocol):
    """A mailbox reached through one protocol. Methods block: call them from a worker thread.

    Every method raises :mod:`mailgate.domain.errors` errors only: ``NotFound`` for an unknown
    or stale id, ``InvalidRequest`` for a request the mailbox cannot apply, and the
    connection errors (auth, unreachable, timeout, TLS).
    """

    def verify(self) -> None:
        """Log in and out once."""
        ...

    def close(self) -> None:
        """Drop pooled connections."""
        ...

    def reap(self) -> int:
        """Drop pooled connections idle past their limit; how many."""
        ...

    def accepts_connections(self, timeout: float) -> bool:
        """Whether the server accepts a TCP connection now (by the address policy)."""
        ...

    def refresh(self) -> None:
        """Bring local state up to date with the server now: POP3 downloads new mail;
        IMAP keeps no state, so nothing happens."""
        ...

    def list_folders(self) -> list[Folder]: ...

    def create_folder(self, name: str, parent_id: str | None) -> Folder: ...

    def rename_folder(
        self, folder_id: str, name: str | None, parent_id: str | None, keep_parent: bool = False
    ) -> Folder:
        """Rename (``name`` None: keep it) and/or move under ``parent_id`` (None: top level;
        ignored with ``keep_parent``)."""
        ...

    def delete_folder(self, folder_id: str) -> None: ...

    def list_messages(
        self, folder_id: str | None, filters: MessageFilter, limit: int, cursor: str | None
    ) -> MessagePage:
        """Newest first (``folder_id`` None: the inbox); ``cursor`` continues exactly
        after the previous page."""
        ...

    def get_message(self, message_id: str) -> Message:
        """The whole message; reading never marks it seen (the service does that as a change
        of its own, recorded like every other)."""
        ...

    def stream_raw(self, message_id: str) -> tuple[Download, Iterator[bytes]]: ...

    def stream_attachment(
        self, message_id: str, attachment_id: str
    ) -> tuple[Download, Iterator[bytes]]: ...

    def update_message(self, message_id: str, change: MessageChange) -> MessageSummary: ...

    def move_message(self, message_id: str, folder_id: str) -> MessageSummary: ...

    def copy_message(self, message_id: str, folder_id: str) -> MessageSummary: ...

    def append_message(self, raw: bytes, role: str, *, seen: bool, draft: bool) -> MessageSummary:
        """Put a message Mailgate made (a sent copy, a draft) into the folder with ``role``
        (made on first need), as the gateway's own change."""
        ...

    def find_by_message_id(self, role: str, message_id: str) -> MessageSummary | None:
        """The newest message in the folder with ``role`` whose Message-ID header is
        ``message_id`` (with its angle brackets); None when there is none (or no such
        folder). The send worker asks it before saving a Sent copy a second time."""
        ...

    def open_watch(self) -> Watch | None:
        """A connection of its own on which a watcher waits for the server to report
        changes and looks for them; None where the protocol cannot tell (the service then
        calls :meth:`refresh` on a timer)."""
        ...

    def batch(
        self,
        message_ids: list[str],
        change: MessageChange | None,
        folder_id: str | None,
        delete: bool,
        permanent: bool,
    ) -> list[BatchResult]:
        """One change for many ids: flags/keywords, a move to ``folder_id``, or a delete (to
        the trash; expunged when ``permanent`` or already in the trash). A status per id."""
        ...


@dataclass(frozen=True)
class WatchRound:
    """What one look at the server found: how many changes it recorded, and whether some
    folders were left for the next round (the gateway itself was changing them)."""

    events: int
    deferred: bool
    inbox: tuple[int, int] | None = None
    """INBOX's (UIDNEXT, MESSAGES) as the round saw them, so the watch can tell mail that
    came after it looked but before it waits again; None where the round did not look."""


class Watch(Protocol):
    """A watcher's connection (see :meth:`MailAdapter.open_watch`). Connection failures raise
    :class:`~mailgate.domain.errors.MailboxError`; the watcher then opens a new one."""

    everywhere: bool
    """True when the server reports changes of every folder while waiting (IMAP NOTIFY),
    so rounds on the clock are only a safety net."""

    def round(self) -> WatchRound:
        """Look at the server and record what changed since the last round."""
        ...

    def begin_wait(self) -> Waiting | None:
        """Start waiting for the server to report a change; None when one came while the
        last round looked (round again at once). No thread need wait with it: the caller
        watches :attr:`Waiting.socket` (with many others) and ends the wait itself."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Wait up to ``seconds`` for the server to report a change, or for ``stop``, in
        this thread."""
        ...

    def close(self) -> None: ...


class Waiting(Protocol):
    """A wait for news under way (:meth:`Watch.begin_wait`). Nothing else may use the
    connection until :meth:`end`."""

    socket: socket.socket | None
    """Readable when the server has said something (then ask :meth:`heard`); None when the
    server cannot tell unasked, and the caller ends the wait on its clock."""

    def heard(self) -> bool:
        """Read what the server said: True when it tells of a change (or of the end of the
        connection, which :meth:`end` then raises)."""
        ...

    def end(self) -> None:
        """End the wait; raises when the connection is gone."""
        ...


class AliasStore(Protocol):
    """Remembers where a message that kept its id after a move lives now."""

    account_id: str

    def resolve(self, message_id: str) -> MessageLocation | None: ...

    def ids_at(self, path: str, uidvalidity: int, uids: Iterable[int]) -> dict[int, str]: ...

    def record(self, message_id: str, location: MessageLocation) -> None: ...

    def forget(self, message_id: str) -> None: ...
