"""The POP3 implementation of :class:`adapters.base.MailAdapter`.

Logging in works today; message, folder and flag access (served from Mailgate's store,
which emulates the state POP3 lacks) is the next piece of work, so those calls answer a
clear ``unsupported`` problem instead of failing obscurely.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import NoReturn

from adapters._oplog import logged_operation
from adapters.endpoint import MailboxEndpoint
from adapters.errors import Unsupported
from adapters.models import (
    BatchResult,
    Download,
    Folder,
    Message,
    MessageChange,
    MessageFilter,
    MessagePage,
    MessageSummary,
)
from adapters.pop3.connect import open_pop3

log = logging.getLogger("mailgate.pop3")


def _not_yet() -> NoReturn:
    raise Unsupported("message access for POP3 accounts is not available yet")


class Pop3Adapter:
    def __init__(self, endpoint: MailboxEndpoint) -> None:
        self.endpoint = endpoint

    def verify(self) -> None:
        with logged_operation(log, self.endpoint.account_id, "pop3.verify"):
            client = open_pop3(self.endpoint)
            with contextlib.suppress(Exception):  # login succeeded, which is what was asked
                client.quit()

    def close(self) -> None:
        return None

    def list_folders(self) -> list[Folder]:
        _not_yet()

    def create_folder(self, name: str, parent_id: str | None) -> Folder:
        _not_yet()

    def rename_folder(self, folder_id: str, name: str, parent_id: str | None) -> Folder:
        _not_yet()

    def delete_folder(self, folder_id: str) -> None:
        _not_yet()

    def list_messages(
        self, folder_id: str | None, filters: MessageFilter, limit: int, cursor: str | None
    ) -> MessagePage:
        _not_yet()

    def get_message(self, message_id: str, mark_seen: bool = False) -> Message:
        _not_yet()

    def stream_raw(self, message_id: str) -> tuple[Download, Iterator[bytes]]:
        _not_yet()

    def stream_attachment(
        self, message_id: str, attachment_id: str
    ) -> tuple[Download, Iterator[bytes]]:
        _not_yet()

    def update_message(self, message_id: str, change: MessageChange) -> MessageSummary:
        _not_yet()

    def move_message(self, message_id: str, folder_id: str) -> MessageSummary:
        _not_yet()

    def copy_message(self, message_id: str, folder_id: str) -> MessageSummary:
        _not_yet()

    def delete_message(self, message_id: str, permanent: bool) -> None:
        _not_yet()

    def batch(
        self,
        message_ids: list[str],
        change: MessageChange | None,
        folder_id: str | None,
        delete: bool,
        permanent: bool,
    ) -> list[BatchResult]:
        _not_yet()
