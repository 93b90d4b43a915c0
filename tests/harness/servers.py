"""What the tests need of a mail server, whichever it is (Dovecot, Cyrus, Courier): the
contract, watcher and webhook suites run on each through the `mail_server` fixture."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import imapclient

from .dovecot import MailUser


class MailServer(Protocol):
    host: str
    imap_port: int
    imaps_port: int
    pop3_port: int
    pop3s_port: int
    special_folders: tuple[str, ...]

    def add_user(self, name: str | None = None, password: str | None = None) -> MailUser: ...

    def deliver(
        self,
        user: MailUser | str,
        messages: Sequence[bytes],
        folder: str = "INBOX",
        flags: str = "",
        internal_dates: Sequence[float] | None = None,
    ) -> None:
        """Seed ``folder`` (as a client sees its name) without going through the server."""
        ...

    def folder_name(self, folder: str) -> str:
        """The wire name of a folder as the API shows its path (Courier: "INBOX." first)."""
        ...

    def imap_client(self, user: MailUser, *, tls: bool = False) -> imapclient.IMAPClient: ...

    def append(
        self,
        user: MailUser,
        message: bytes,
        folder: str = "INBOX",
        flags: Iterable[bytes | str] = (),
    ) -> int: ...
