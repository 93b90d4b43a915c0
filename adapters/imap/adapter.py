"""The IMAP implementation of :class:`adapters.base.MailAdapter`.

Every operation borrows a pooled connection, selects what it needs and gives the connection
back. Nothing is cached: the server is the truth, so changes made by other clients show on
the next call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from imapclient import IMAPClient
from sqlalchemy.engine import Engine

from mailgate.adapters._net import accepts_connections
from mailgate.adapters._oplog import logged_operation
from mailgate.adapters.base import AliasStore, WatchRound
from mailgate.adapters.imap import folders, uidplus, wire
from mailgate.adapters.imap.bodystructure import PartInfo, find_part
from mailgate.adapters.imap.connect import logout_quietly, open_imap
from mailgate.adapters.imap.idle import ImapWatch
from mailgate.adapters.imap.messages import (
    apply_change,
    exists,
    fetch_message,
    list_page,
    locate,
    select,
    select_message,
    summary_of,
)
from mailgate.adapters.imap.own_changes import (
    ANY_FOLDER,
    Arrivals,
    OwnChange,
    Recorder,
    changing,
    flag_changes,
)
from mailgate.adapters.imap.pool import ImapPool
from mailgate.adapters.imap.search import Text
from mailgate.adapters.imap.summary import whole_message
from mailgate.adapters.imap.watch import poll
from mailgate.adapters.transfer import make_decoder
from mailgate.domain import ids
from mailgate.domain.changes import ChangeSink
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import InvalidRequest, NotFound
from mailgate.domain.ids import MessageLocation, folder_id, folder_path
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

log = logging.getLogger("mailgate.imap")
T = TypeVar("T")
CHUNK = 1024 * 1024


class ImapAdapter:
    def __init__(
        self,
        endpoint: MailboxEndpoint,
        aliases: AliasStore,
        engine: Engine,
        changes: ChangeSink,
        pool_size: int = 4,
        watched: set[str] | None = None,
    ) -> None:
        """``watched``: the folder paths whose changes by other clients are reported (None:
        all); ``changes`` records what a watch round finds."""
        self.endpoint = endpoint
        self.watched = watched
        self.aliases = aliases
        self.engine = engine
        self.changes = changes
        self.pool = ImapPool(endpoint, size=pool_size, max_idle=endpoint.pool_idle)

    def _run(self, operation: str, work: Callable[[IMAPClient], T]) -> T:
        with logged_operation(log, self.endpoint, f"imap.{operation}"):
            return self.pool.run(work)

    def _changing(self, paths: list[str]) -> contextlib.AbstractContextManager[Recorder]:
        """Around a change of the server: records it as the gateway's own, so the watcher
        does not report it again (adapters.imap.own_changes)."""
        return changing(self.engine, self.endpoint.account_id, paths)

    def verify(self) -> None:
        with logged_operation(log, self.endpoint, "imap.verify"):
            logout_quietly(open_imap(self.endpoint))  # the login is what was asked

    def close(self) -> None:
        self.pool.close()

    def accepts_connections(self, timeout: float) -> bool:
        return accepts_connections(self.endpoint, timeout)

    def reap(self) -> int:
        return self.pool.reap()

    def refresh(self) -> None:
        """Look for changes made on the server (new mail, flags) and record them; reads never
        need this: the server is asked on every call."""
        self._run("watch", self._watch_round)

    def open_watch(self) -> ImapWatch:
        with logged_operation(log, self.endpoint, "imap.open_watch"):
            return ImapWatch(open_imap(self.endpoint), self._watch_round)

    def _watch_round(self, client: IMAPClient) -> WatchRound:
        """One watch round on ``client`` (a pooled or the watcher's own connection)."""
        return poll(
            client, self.aliases, self.engine, self.endpoint.account_id, self.changes, self.watched
        )

    # -- folders ------------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        return self._run("list_folders", folders.list_folders)

    def create_folder(self, name: str, parent_id: str | None) -> Folder:
        def work(client: IMAPClient) -> Folder:
            with self._changing([ANY_FOLDER]) as own:
                folder = folders.create(client, name, parent_id)
                # "made", not "created": it was empty, so mail the watcher finds in it came later
                own.add([OwnChange(folder_path(folder.id) or "", 0, 0, "made")])
            return folder

        return self._run("create_folder", work)

    def rename_folder(
        self, folder_id: str, name: str | None, parent_id: str | None, keep_parent: bool = False
    ) -> Folder:
        def work(client: IMAPClient) -> Folder:
            with self._changing([ANY_FOLDER]) as own:
                before = {f.path for f in folders.list_raw(client)}
                folder = folders.rename(client, folder_id, name, parent_id, keep_parent)
                after = {f.path for f in folders.list_raw(client)}
                own.add(_folders_changed(before - after, after - before))  # with children
            return folder

        return self._run("rename_folder", work)

    def delete_folder(self, folder_id: str) -> None:
        def work(client: IMAPClient) -> None:
            with self._changing([ANY_FOLDER]) as own:
                folders.delete(client, folder_id)
                own.add(_folders_changed({p for p in [folder_path(folder_id)] if p}, set()))

        self._run("delete_folder", work)

    # -- reading ------------------------------------------------------------------------

    def list_messages(
        self, folder_id: str | None, filters: MessageFilter, limit: int, cursor: str | None
    ) -> MessagePage:
        path = "INBOX" if folder_id is None else folder_path(folder_id)
        if path is None:
            raise NotFound("folder")
        return self._run(
            "list_messages", lambda c: list_page(c, self.aliases, path, filters, limit, cursor)
        )

    def get_message(self, message_id: str) -> Message:
        location = locate(self.aliases, message_id)

        def work(client: IMAPClient) -> Message:
            items = [b"BODY.PEEK[]", b"FLAGS", b"RFC822.SIZE", b"INTERNALDATE"]
            data = fetch_message(client, location, items) or {}
            raw = data.get(b"BODY[]")
            if raw is None:
                raise NotFound("message")
            return whole_message(message_id, folder_id(location.path), data)

        return self._run("get_message", work)

    def stream_raw(self, message_id: str) -> tuple[Download, Iterator[bytes]]:
        location = locate(self.aliases, message_id)
        summary = self._run("raw", lambda c: _summary_at(c, self.aliases, location, message_id))
        download = Download(content_type="message/rfc822", size=summary.size)
        return download, self._chunks(location, b"", summary.size, None)

    def stream_attachment(
        self, message_id: str, attachment_id: str
    ) -> tuple[Download, Iterator[bytes]]:
        location = locate(self.aliases, message_id)

        def work(client: IMAPClient) -> PartInfo | None:
            data = fetch_message(client, location, [b"BODYSTRUCTURE"])
            if data is None:
                raise NotFound("message")
            return find_part(data[b"BODYSTRUCTURE"], attachment_id)

        part = self._run("attachment", work)
        if part is None or part.content_type.startswith("multipart/"):
            raise NotFound("attachment")
        encoding = None if part.content_type == "message/rfc822" else part.encoding
        download = Download(content_type=part.content_type, filename=part.filename)
        return download, self._chunks(location, part.part_id.encode(), part.size, encoding)

    def _chunks(
        self, location: MessageLocation, section: bytes, size: int, encoding: str | None
    ) -> Iterator[bytes]:
        """Partial FETCHes (RFC 3501 BODY[section]<origin.octets>), one borrowed connection
        each, decoded on the fly: memory stays at one chunk whatever the size."""
        decode = make_decoder(encoding)
        offset = 0
        key = b"BODY[" + section + b"]<%d>"
        while True:
            start = offset

            def work(client: IMAPClient, start: int = start) -> bytes:
                item = b"BODY.PEEK[" + section + b"]<%d.%d>" % (start, CHUNK)
                data = fetch_message(client, location, [item])
                if data is None:
                    raise NotFound("message")
                return data.get(key % start) or b""

            chunk = self.pool.run(work)
            offset += len(chunk)
            last = len(chunk) < CHUNK or (size and offset >= size)
            out = decode(chunk, bool(last))
            if out:
                yield out
            if last:
                return

    # -- changing -----------------------------------------------------------------------

    def update_message(self, message_id: str, change: MessageChange) -> MessageSummary:
        location = locate(self.aliases, message_id)

        def work(client: IMAPClient) -> MessageSummary:
            selected = select_message(client, location)
            if not exists(client, location.uid):
                raise NotFound("message")
            with self._changing([location.path]) as own:
                permanent = selected.get(b"PERMANENTFLAGS", ())
                apply_change(client, [location.uid], change, permanent)
                own.add(flag_changes(client, location.path, location.uidvalidity, [location.uid]))
            return summary_of(client, self.aliases, location, message_id)

        return self._run("update_message", work)

    def move_message(self, message_id: str, folder_id: str) -> MessageSummary:
        result = self.batch([message_id], None, folder_id, delete=False, permanent=False)[0]
        if result.status != 200:
            raise NotFound("message")
        if result.message_id is not None:
            return self._summary(result.message_id)
        target = _target_path(folder_id)  # no COPYUID: the moved message is the newest there

        def work(client: IMAPClient) -> MessageSummary:
            moved = _newest(client, target)
            return summary_of(client, self.aliases, moved)

        return self._run("summary", work)

    def copy_message(self, message_id: str, folder_id: str) -> MessageSummary:
        location = locate(self.aliases, message_id)
        target = _target_path(folder_id)

        def work(client: IMAPClient) -> MessageLocation:
            select_message(client, location)
            if not exists(client, location.uid):
                raise NotFound("message")
            _ensure_folder(client, target)
            with self._changing([target]) as own:
                arrivals = Arrivals(client, target)
                mapping = uidplus.copy(client, [location.uid], target)
                if mapping is not None:
                    [new_uid] = mapping[1].values()
                    own.add([OwnChange(target, mapping[0], new_uid, "created")])
                else:
                    own.add(arrivals.records(1))
                return _new_location(client, target, location, mapping)

        new_location = self._run("copy_message", work)
        return self._summary(ids.message_id(new_location, self.endpoint.account_id))

    def append_message(self, raw: bytes, role: str, *, seen: bool, draft: bool) -> MessageSummary:
        flags = [flag for flag, on in ((b"\\Seen", seen), (b"\\Draft", draft)) if on]

        def work(client: IMAPClient) -> MessageLocation:
            target = folders.ensure_role(client, role)  # type: ignore[arg-type]  # a Role
            with self._changing([target]) as own:
                arrivals = Arrivals(client, target)
                answer = client.append(target, raw, flags=flags)
                appended = uidplus.parse_appenduid(answer)
                if appended is not None:
                    own.add([OwnChange(target, appended[0], appended[1], "created")])
                    return MessageLocation(target, *appended)
                own.add(arrivals.records(1))
                return _newest(client, target)

        location = self._run("append_message", work)
        return self._summary(ids.message_id(location, self.endpoint.account_id))

    def find_by_message_id(self, role: str, message_id: str) -> MessageSummary | None:
        def work(client: IMAPClient) -> MessageLocation | None:
            path = folders.path_with_role(client, role)
            if path is None:
                return None
            selected = select(client, path)
            uids = wire.search(client, ["HEADER", "MESSAGE-ID", Text(message_id)], None)
            return MessageLocation(path, int(selected[b"UIDVALIDITY"]), max(uids)) if uids else None

        location = self._run("find_by_message_id", work)
        if location is None:
            return None
        return self._summary(ids.message_id(location, self.endpoint.account_id))

    def _summary(self, id_: str) -> MessageSummary:
        location = locate(self.aliases, id_)
        return self._run("summary", lambda c: _summary_at(c, self.aliases, location, id_))

    def batch(
        self,
        message_ids: list[str],
        change: MessageChange | None,
        folder_id: str | None,
        delete: bool,
        permanent: bool,
    ) -> list[BatchResult]:
        """One command per folder for many ids; unknown ids answer 404 each, the rest proceed."""
        target = _target_path(folder_id) if folder_id is not None else None
        results: dict[str, BatchResult] = {}
        groups: dict[tuple[str, int], dict[int, str]] = {}
        for id_ in message_ids:
            try:
                location = locate(self.aliases, id_)
            except NotFound:
                results[id_] = BatchResult(id=id_, status=404)
                continue
            groups.setdefault((location.path, location.uidvalidity), {})[location.uid] = id_

        def work(client: IMAPClient) -> None:
            trash = folders.ensure_role(client, "trash") if delete and not permanent else None
            if target is not None:
                _ensure_folder(client, target)
            for (path, validity), by_uid in groups.items():
                try:
                    selected = select_message(client, MessageLocation(path, validity, 1))
                except NotFound:
                    results.update({i: BatchResult(id=i, status=404) for i in by_uid.values()})
                    continue
                present = set(client.search(["UID", ",".join(map(str, by_uid))])) & set(by_uid)
                for uid, id_ in by_uid.items():
                    if uid not in present:
                        results[id_] = BatchResult(id=id_, status=404)
                uids = sorted(present)
                if not uids:
                    continue
                destination = target if not delete else trash
                with self._changing([p for p in (path, destination) if p]) as own:
                    change_group(client, path, validity, uids, selected, destination, own)

        def change_group(
            client: IMAPClient,
            path: str,
            validity: int,
            uids: list[int],
            selected: dict[bytes, Any],
            destination: str | None,
            own: Recorder,
        ) -> None:
            by_uid = groups[(path, validity)]
            if change is not None and not change.is_empty():
                apply_change(client, uids, change, selected.get(b"PERMANENTFLAGS", ()))
                own.add(flag_changes(client, path, validity, uids))
            if delete and (permanent or destination == path):
                uidplus.expunge(client, uids)
                own.add([OwnChange(path, validity, uid, "destroyed") for uid in uids])
                for uid in uids:
                    self.aliases.forget(by_uid[uid])
                    results[by_uid[uid]] = BatchResult(id=by_uid[uid], status=200)
            elif destination is not None and destination != path:
                arrivals = Arrivals(client, destination)
                mapping = uidplus.move(client, uids, destination)
                own.add(_moved(path, validity, destination, uids, mapping))
                if mapping is None:
                    own.add(arrivals.records(len(uids)))
                self._record_moves(
                    client, destination, path, validity, by_uid, uids, mapping, results
                )
            else:
                results.update(
                    {
                        by_uid[u]: BatchResult(id=by_uid[u], status=200, message_id=by_uid[u])
                        for u in uids
                    }
                )

        self._run("batch", work)
        return [results[id_] for id_ in message_ids]

    def _record_moves(
        self,
        client: IMAPClient,
        destination: str,
        path: str,
        validity: int,
        by_uid: dict[int, str],
        uids: list[int],
        mapping: tuple[int, dict[int, int]] | None,
        results: dict[str, BatchResult],
    ) -> None:
        for uid in uids:
            id_ = by_uid[uid]
            if mapping and uid in mapping[1]:
                self.aliases.record(id_, MessageLocation(destination, mapping[0], mapping[1][uid]))
                results[id_] = BatchResult(id=id_, status=200, message_id=id_)
            else:  # the server did not say where it went: the id changes
                self.aliases.forget(id_)
                results[id_] = BatchResult(id=id_, status=200, message_id=None)


def _folders_changed(destroyed: set[str], created: set[str]) -> list[OwnChange]:
    return [OwnChange(path, 0, 0, "destroyed") for path in sorted(destroyed)] + [
        OwnChange(path, 0, 0, "created") for path in sorted(created)
    ]


def _moved(
    path: str,
    validity: int,
    destination: str,
    uids: list[int],
    mapping: tuple[int, dict[int, int]] | None,
) -> list[OwnChange]:
    """A move is, on the server, an expunge here and new mail there (where the server said)."""
    gone = [OwnChange(path, validity, uid, "destroyed") for uid in uids]
    if mapping is None:
        return gone
    target_validity, new_uids = mapping
    return gone + [OwnChange(destination, target_validity, u, "created") for u in new_uids.values()]


def _summary_at(
    client: IMAPClient, aliases: AliasStore, location: MessageLocation, id_: str
) -> MessageSummary:
    select_message(client, location)
    return summary_of(client, aliases, location, id_)


def _target_path(folder_id: str) -> str:
    path = folder_path(folder_id)
    if path is None:
        raise InvalidRequest("the target folder does not exist")
    return path


def _ensure_folder(client: IMAPClient, path: str) -> None:
    if not any(f.path == path and f.selectable for f in folders.list_raw(client)):
        raise InvalidRequest("the target folder does not exist")


def _new_location(
    client: IMAPClient,
    target: str,
    source: MessageLocation,
    mapping: tuple[int, dict[int, int]] | None,
) -> MessageLocation:
    if mapping and source.uid in mapping[1]:
        return MessageLocation(target, mapping[0], mapping[1][source.uid])
    return _newest(client, target)  # no COPYUID: the copy is the newest message there


def _newest(client: IMAPClient, target: str) -> MessageLocation:
    """The newest message in ``target``: where a message just put there is when the server
    did not say its UID (no COPYUID/APPENDUID, RFC 4315)."""
    selected = select(client, target)
    uids = client.search(["ALL"])
    if not uids:
        raise NotFound("message")
    return MessageLocation(target, int(selected[b"UIDVALIDITY"]), max(uids))
