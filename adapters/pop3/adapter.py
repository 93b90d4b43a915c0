"""The POP3 implementation of :class:`adapters.base.MailAdapter`.

POP3 offers one maildrop and no state, so reads and changes are served by the store
(:mod:`adapters.pop3.mailstore`) and the server is only downloaded from
(:mod:`adapters.pop3.sync`): before a read finds the last sync older than the interval,
when the account is added, and after a permanent delete that the policy sends on.
"""

from __future__ import annotations

import contextlib
import logging
import poplib
import threading
import time
from collections.abc import Iterator

from sqlalchemy.engine import Engine

from mailgate.adapters._net import CommandDeadlines, accepts_connections
from mailgate.adapters._oplog import logged_operation
from mailgate.adapters.mime import find_part
from mailgate.adapters.pop3.connect import open_pop3
from mailgate.adapters.pop3.mailstore import MailStore
from mailgate.adapters.pop3.respcodes import busy_error, retrying_when_busy
from mailgate.adapters.pop3.sync import Pop3Sync, SyncResult
from mailgate.domain.accounts import Pop3Policy
from mailgate.domain.changes import ChangeSink
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import MailboxError, NotFound, Unsupported
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

log = logging.getLogger("mailgate.pop3")
CHUNK = 1024 * 1024


class Pop3Adapter:
    def __init__(
        self,
        endpoint: MailboxEndpoint,
        engine: Engine,
        changes: ChangeSink,
        policy: Pop3Policy,
        sync_interval: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.policy = policy
        self.sync_interval = sync_interval
        self.store = MailStore(engine, endpoint.account_id)
        self.syncer = Pop3Sync(endpoint, self.store, policy, changes)
        self._last_attempt = 0.0
        self._describing: threading.Thread | None = None
        self._describing_lock = threading.Lock()

    def verify(self) -> None:
        """Log in, and make sure the server has UIDL: without it nothing can be tracked.
        A locked maildrop (``-ERR [IN-USE]``) is waited for a few seconds, as a sync does."""
        with logged_operation(log, self.endpoint, "pop3.verify"):
            retrying_when_busy(self._verify_once, self.endpoint.account_id)

    def _verify_once(self) -> None:
        client = open_pop3(self.endpoint)
        deadline = CommandDeadlines(client.sock, self.endpoint.read_timeout)
        try:
            with deadline("UIDL"):
                client.uidl()
        except Exception as exc:
            if deadline.expired:
                raise deadline.overdue() from exc
            if not isinstance(exc, poplib.error_proto):
                raise
            if (busy := busy_error(exc)) is not None:
                raise busy from exc
            raise Unsupported(
                "this POP3 server does not support UIDL (RFC 1939), so Mailgate cannot "
                "tell its messages apart"
            ) from exc
        finally:
            with contextlib.suppress(Exception):
                client.quit()

    def close(self) -> None:
        return None

    def accepts_connections(self, timeout: float) -> bool:
        return accepts_connections(self.endpoint, timeout)

    def reap(self) -> int:
        return 0  # every operation opens and ends its own session

    def refresh(self) -> None:
        """The background round: sync, waiting a few seconds for a locked maildrop (a lock
        held longer is MailboxBusy: the round ends, the next one tries again)."""
        self.sync()

    def open_watch(self) -> None:
        """POP3 cannot tell of changes: the service syncs on a timer (refresh)."""
        return None

    def sync(self, wait_if_busy: bool = True) -> SyncResult:
        """Download new mail now (or skip if another sync of this account is running), then
        describe it for lists and search in a background thread. ``wait_if_busy``: retry a
        locked maildrop for a few seconds (else raise MailboxBusy at once)."""
        self._last_attempt = time.monotonic()
        result = self.syncer.run(wait_if_busy)
        if result.downloaded:
            self._describe_in_background()
        return result

    def _describe_in_background(self) -> None:
        with self._describing_lock:
            if self._describing is not None and self._describing.is_alive():
                return
            self._describing = threading.Thread(
                target=self._describe, name=f"describe-{self.endpoint.account_id}", daemon=True
            )
            self._describing.start()

    def _describe(self) -> None:
        try:
            self.store.describe_pending()
        except Exception:  # lists describe what they show; search catches up itself
            log.exception(
                "describing messages failed", extra={"account_id": self.endpoint.account_id}
            )

    def _maybe_sync(self) -> None:
        if time.monotonic() - self._last_attempt < self.sync_interval:
            return
        try:  # a reader does not wait out a locked maildrop: the store answers now
            self.sync(wait_if_busy=False)
        except MailboxError as exc:  # the store still answers; the error is kept on the account
            log.warning(
                "pop3 sync failed; serving the store",
                extra={"account_id": self.endpoint.account_id, "error": exc.detail},
            )

    # -- folders -----------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        self._maybe_sync()
        return self.store.folders.list_folders()

    def create_folder(self, name: str, parent_id: str | None) -> Folder:
        return self.store.folders.create_folder(name, parent_id)

    def rename_folder(
        self, folder_id: str, name: str | None, parent_id: str | None, keep_parent: bool = False
    ) -> Folder:
        return self.store.folders.rename_folder(folder_id, name, parent_id, keep_parent)

    def delete_folder(self, folder_id: str) -> None:
        self.store.folders.delete_folder(folder_id)

    # -- reading ------------------------------------------------------------------------

    def list_messages(
        self, folder_id: str | None, filters: MessageFilter, limit: int, cursor: str | None
    ) -> MessagePage:
        self._maybe_sync()
        # asked before the list is read: a first sync that finishes in between (another
        # process's) has stored all it lists, and one that has not is not taken for done
        complete = self.syncer.first_sync_finished()
        page = self.store.list_messages(folder_id, filters, limit, cursor)
        page.sync_state = "running" if complete else "initializing"
        return page

    def get_message(self, message_id: str) -> Message:
        return self.store.get_message(message_id)

    def stream_raw(self, message_id: str) -> tuple[Download, Iterator[bytes]]:
        raw = self.store.raw(message_id)
        chunks = (raw[i : i + CHUNK] for i in range(0, len(raw), CHUNK))
        return Download(content_type="message/rfc822", size=len(raw)), chunks

    def stream_attachment(
        self, message_id: str, attachment_id: str
    ) -> tuple[Download, Iterator[bytes]]:
        part = find_part(self.store.raw(message_id), attachment_id)
        if part is None:
            raise NotFound("attachment")
        download = Download(content_type=part.content_type, filename=part.filename, size=part.size)
        return download, iter([part.payload])

    # -- changing -----------------------------------------------------------------------

    def update_message(self, message_id: str, change: MessageChange) -> MessageSummary:
        if not self.store.change([message_id], change)[message_id]:
            raise NotFound("message")
        return self.store.summary(message_id)

    def move_message(self, message_id: str, folder_id: str) -> MessageSummary:
        if not self.store.move([message_id], folder_id)[message_id]:
            raise NotFound("message")
        return self.store.summary(message_id)

    def copy_message(self, message_id: str, folder_id: str) -> MessageSummary:
        return self.store.copy(message_id, folder_id)

    def find_by_message_id(self, role: str, message_id: str) -> MessageSummary | None:
        return self.store.find_by_message_id(role, message_id)

    def append_message(self, raw: bytes, role: str, *, seen: bool, draft: bool) -> MessageSummary:
        return self.store.add(raw, role, seen=seen, draft=draft)

    def batch(
        self,
        message_ids: list[str],
        change: MessageChange | None,
        folder_id: str | None,
        delete: bool,
        permanent: bool,
    ) -> list[BatchResult]:
        found = {message_id: True for message_id in message_ids}
        if change is not None and not change.is_empty():
            found = self.store.change(message_ids, change)
        if folder_id is not None:
            found = self.store.move(message_ids, folder_id)
        kept = set(message_ids)
        if delete:
            found, kept = self._delete(message_ids, permanent)
        return [
            BatchResult(
                id=i,
                status=200 if found.get(i) else 404,
                message_id=i if found.get(i) and i in kept else None,
            )
            for i in message_ids
        ]

    def _delete(self, message_ids: list[str], permanent: bool) -> tuple[dict[str, bool], set[str]]:
        """Returns which ids existed, and which of them still exist (moved to the trash)."""
        trash = self.store.folders.trash_id()
        to_purge: list[str] = []
        to_trash: list[str] = []
        found: dict[str, bool] = {}
        for message_id in message_ids:
            try:
                folder = self.store.folder_of(message_id)
            except NotFound:
                found[message_id] = False
                continue
            (to_purge if permanent or folder == trash else to_trash).append(message_id)
        if to_trash:
            found.update(self.store.move(to_trash, trash))
        if to_purge:
            purged, on_server = self.store.purge(to_purge)
            found.update(purged)
            if on_server and self.policy.purge_on_server:
                with contextlib.suppress(MailboxError):  # the next sync sends the DELE
                    self.sync(wait_if_busy=False)
        return found, set(to_trash)
