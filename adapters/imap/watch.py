"""Changes made on the IMAP server by anyone else: new, expunged and re-flagged messages, and
created or deleted folders, found by comparing STATUS (RFC 3501 section 6.3.10: MESSAGES,
UIDNEXT, UIDVALIDITY, and HIGHESTMODSEQ where the server has CONDSTORE, RFC 7162) with the
progress kept in the store. Only folders whose numbers moved are opened (read-only, EXAMINE).

Progress per folder survives restarts, so nothing that came while the gateway was down is
missed and nothing old is replayed. The first round of an account takes a baseline without
announcing anything; a folder that appears later is new, and so is all the mail in it.
Changes the gateway made itself were emitted by the API already and are skipped
(adapters.imap.own_changes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete
from sqlmodel import select as sql_select

from adapters.base import AliasStore
from adapters.ids import folder_id
from adapters.imap import folders, uidset
from adapters.imap.messages import fetch_summaries, ids_for, unselect
from adapters.imap.own_changes import Pending, lock_for
from adapters.models import MessageSummary
from store.db import session_scope
from store.models import ImapFolderState
from store.outbox import Event, emit, payload

log = logging.getLogger("mailgate.imap.watch")


@dataclass
class Round:
    """What one watch round found; ``examined`` tells whether it left another folder open."""

    events: list[Event] = field(default_factory=list)
    examined: bool = False


def poll(
    client: IMAPClient,
    aliases: AliasStore,
    engine: Engine,
    account_id: str,
    watched: set[str] | None = None,
) -> Round:
    """One round over the account's folders (``watched``: the paths whose messages are
    watched, None for all); emits what changed in one transaction with the new progress."""
    with lock_for(account_id):
        return _Poll(client, aliases, engine, account_id, watched).run()


class _Poll:
    def __init__(
        self,
        client: IMAPClient,
        aliases: AliasStore,
        engine: Engine,
        account_id: str,
        watched: set[str] | None,
    ) -> None:
        self.client = client
        self.aliases = aliases
        self.engine = engine
        self.account_id = account_id
        self.watched = watched
        self.condstore = client.has_capability("CONDSTORE")
        self.round = Round()
        with Session(engine) as session:
            self.known = {
                row.folder_path: row
                for row in session.exec(
                    sql_select(ImapFolderState).where(ImapFolderState.account_id == account_id)
                )
            }
            self.pending = Pending(session, account_id)

    def run(self) -> Round:
        unselect(self.client)
        listed = folders.list_raw(self.client)
        initial = not self.known
        writes: list[ImapFolderState] = []
        paths = {entry.path for entry in listed}
        gone = [path for path in self.known if path not in paths]
        for path in gone:
            if not self.pending.take(path, 0, 0, "destroyed"):
                self._event("folder", folder_id(path), "destroyed")
        for entry in listed:
            before = self.known.get(entry.path)
            # a folder made by someone else is new, and so is all the mail in it; one the API
            # made (or renamed: the mail in it is not new) was announced already
            made_elsewhere = (
                before is None
                and not initial
                and not self.pending.take(entry.path, 0, 0, "created")
            )
            if made_elsewhere:
                self._event("folder", folder_id(entry.path), "created", self._folder(listed, entry))
            if not entry.selectable or (
                self.watched is not None and entry.path not in self.watched
            ):
                if before is None or before.uids is not None:
                    writes.append(
                        ImapFolderState(
                            account_id=self.account_id,
                            folder_path=entry.path,
                            uidvalidity=0,
                            uidnext=0,
                        )
                    )
                continue
            if made_elsewhere:
                before = _empty(self.account_id, entry.path)
            after = self._folder_round(entry.path, before)
            if after is None and entry.path not in self.known:
                after = before  # a new, empty folder: remember it exists
            if after is not None:
                writes.append(after)
        if writes or gone or self.round.events or self.pending.dirty:
            self._save(writes, gone)
        return self.round

    def _folder_round(self, path: str, before: ImapFolderState | None) -> ImapFolderState | None:
        """The folder's new progress, or None when nothing moved."""
        items = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"] + (
            [b"HIGHESTMODSEQ"] if self.condstore else []
        )
        status = self.client.folder_status(path, items)
        validity = int(status[b"UIDVALIDITY"])
        if before is not None and before.uids is not None and before.uidvalidity in (validity, 0):
            moved = (before.uidnext, before.messages, before.highestmodseq) != (
                int(status[b"UIDNEXT"]),
                int(status[b"MESSAGES"]),
                int(status[b"HIGHESTMODSEQ"]) if self.condstore else None,
            )
            return self._changes(path, before) if moved else None
        if before is not None and before.uids is not None:
            log.warning(
                "folder was recreated (UIDVALIDITY changed); watching it afresh",
                extra={"account_id": self.account_id, "folder": path},
            )
        return self._baseline(path)

    def _examine(self, path: str) -> dict[bytes, Any]:
        self.round.examined = True
        return self.client.select_folder(path, readonly=True)

    def _baseline(self, path: str) -> ImapFolderState:
        selected = self._examine(path)
        uids = set(self.client.search(["ALL"])) if int(selected[b"EXISTS"]) else set()  # type: ignore[call-overload]
        return self._state(path, selected, uids, None)

    def _changes(self, path: str, before: ImapFolderState) -> ImapFolderState:
        selected = self._examine(path)
        validity = int(selected[b"UIDVALIDITY"])  # type: ignore[call-overload]
        if before.uidvalidity not in (validity, 0):
            return self._baseline(path)
        known = uidset.decode(before.uids or "")
        current = set(known)
        if int(selected[b"UIDNEXT"]) > before.uidnext:  # type: ignore[call-overload]
            current |= {
                u for u in self.client.search(["UID", f"{before.uidnext}:*"]) if u >= before.uidnext
            }
        if len(current) != int(selected[b"EXISTS"]):  # type: ignore[call-overload]
            current = set(self.client.search(["ALL"]))  # something was expunged: which?
        created = sorted(
            u for u in current - known if not self.pending.take(path, validity, u, "created")
        )
        vanished = sorted(
            u for u in known - current if not self.pending.take(path, validity, u, "destroyed")
        )
        for summary in _ordered(
            fetch_summaries(self.client, self.aliases, path, validity, created)
        ):
            self._event("message", summary.id, "created", payload(summary))
        modseq = None
        if self.condstore and before.highestmodseq is not None:
            modseq, updated = self._flag_changes(
                path, validity, before.highestmodseq, known & current
            )
            for summary in _ordered(
                fetch_summaries(self.client, self.aliases, path, validity, updated)
            ):
                self._event("message", summary.id, "updated", payload(summary))
        for _uid, id_ in sorted(ids_for(self.aliases, path, validity, vanished).items()):
            self._event("message", id_, "destroyed")
            self.aliases.forget(id_)
        return self._state(path, selected, current, modseq)

    def _flag_changes(
        self, path: str, validity: int, since: int, uids: set[int]
    ) -> tuple[int | None, list[int]]:
        """SEARCH MODSEQ (RFC 7162 section 3.1.5): the messages changed since the last round,
        and the highest mod-sequence among them, up to which this round has seen."""
        found = self.client.search(["MODSEQ", str(since + 1)])
        changed = sorted(int(u) for u in found if int(u) in uids)
        own = {row.uid for row in self.pending.folder(path, validity) if row.change == "updated"}
        if own & set(changed):
            fetched = self.client.fetch(sorted(own & set(changed)), [b"MODSEQ"])
            ours = {
                int(u)
                for u, d in fetched.items()
                if self.pending.take(path, validity, int(u), "updated", int(d[b"MODSEQ"][0]))
            }
            changed = [u for u in changed if u not in ours]
        return getattr(found, "modseq", None), changed

    def _state(
        self, path: str, selected: dict[bytes, Any], uids: set[int], seen_modseq: int | None
    ) -> ImapFolderState:
        uidnext = max(int(selected[b"UIDNEXT"]), max(uids, default=0) + 1)  # type: ignore[call-overload]
        highest = selected.get(b"HIGHESTMODSEQ") if self.condstore else None
        modseq = None if highest is None else max(int(highest), seen_modseq or 0)  # type: ignore[call-overload]
        return ImapFolderState(
            account_id=self.account_id,
            folder_path=path,
            uidvalidity=int(selected[b"UIDVALIDITY"]),  # type: ignore[call-overload]
            uidnext=uidnext,
            highestmodseq=modseq,
            messages=len(uids),
            uids=uidset.encode(uids),
        )

    def _folder(
        self, listed: list[folders.ListedFolder], entry: folders.ListedFolder
    ) -> dict[str, object]:
        total = unread = 0
        if entry.selectable:
            status = self.client.folder_status(entry.path, [b"MESSAGES", b"UNSEEN"])
            total, unread = int(status[b"MESSAGES"]), int(status[b"UNSEEN"])
        return payload(folders.describe(listed, entry, total, unread))

    def _event(
        self, kind: str, object_id: str, change: str, data: dict[str, object] | None = None
    ) -> None:
        self.round.events.append(Event(kind, object_id, change, data or {}))  # type: ignore[arg-type]

    def _save(self, writes: list[ImapFolderState], gone: list[str]) -> None:
        with session_scope(self.engine) as session:
            if gone:
                session.exec(
                    delete(ImapFolderState).where(  # type: ignore[call-overload]
                        col(ImapFolderState.account_id) == self.account_id,
                        col(ImapFolderState.folder_path).in_(gone),
                    )
                )
            for state in writes:
                session.merge(state)
            self.pending.save(session)
            emit(session, self.account_id, self.round.events)


def _empty(account_id: str, path: str) -> ImapFolderState:
    return ImapFolderState(
        account_id=account_id, folder_path=path, uidvalidity=0, uidnext=1, messages=0, uids=""
    )


def _ordered(summaries: dict[int, MessageSummary]) -> list[MessageSummary]:
    return [summaries[uid] for uid in sorted(summaries)]
