"""The one interface every protocol adapter implements. Routers only ever see this."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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

    Every method raises :mod:`adapters.errors` errors only: ``NotFound`` for an unknown
    or stale id, ``InvalidRequest`` for a request the mailbox cannot apply, and the
    connection errors (auth, unreachable, timeout, TLS).
    """

    def verify(self) -> None:
        """Log in and out once."""
        ...

    def close(self) -> None:
        """Drop pooled connections."""
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

    def get_message(self, message_id: str, mark_seen: bool = False) -> Message: ...

    def stream_raw(self, message_id: str) -> tuple[Download, Iterator[bytes]]: ...

    def stream_attachment(
        self, message_id: str, attachment_id: str
    ) -> tuple[Download, Iterator[bytes]]: ...

    def update_message(self, message_id: str, change: MessageChange) -> MessageSummary: ...

    def move_message(self, message_id: str, folder_id: str) -> MessageSummary: ...

    def copy_message(self, message_id: str, folder_id: str) -> MessageSummary: ...

    def delete_message(self, message_id: str, permanent: bool) -> None:
        """To the trash folder, or expunged when ``permanent`` or already in the trash."""
        ...

    def batch(
        self,
        message_ids: list[str],
        change: MessageChange | None,
        folder_id: str | None,
        delete: bool,
        permanent: bool,
    ) -> list[BatchResult]: ...


class AliasStore(Protocol):
    """Remembers where a message that kept its id after a move lives now."""

    account_id: str

    def resolve(self, message_id: str) -> MessageLocation | None: ...

    def ids_at(self, path: str, uidvalidity: int, uids: Iterable[int]) -> dict[int, str]: ...

    def record(self, message_id: str, location: MessageLocation) -> None: ...

    def forget(self, message_id: str) -> None: ...
