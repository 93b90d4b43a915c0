"""Changes made on the IMAP server by anyone else: new, expunged and re-flagged messages, and
created or deleted folders, found by comparing STATUS (RFC 3501 section 6.3.10: MESSAGES,
UIDNEXT, UIDVALIDITY, and HIGHESTMODSEQ where the server has CONDSTORE, RFC 7162) with the
progress kept in the store. Only folders whose numbers moved are opened (SELECT: see _open).

Progress per folder survives restarts, so nothing that came while the gateway was down is
missed and nothing old is replayed. The first round of an account takes a baseline without
announcing anything; a folder that appears later is new, and so is all the mail in it.

A round first looks at the server, then reads the gateway's own changes
(adapters.imap.own_changes) and drops those, since the API emitted them already; a folder
with a change of the gateway in flight is left for the next round. Only then are the
summaries of what remains fetched and the events emitted, with the progress, in one
transaction."""

from __future__ import annotations

import imaplib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete
from sqlmodel import select as sql_select

from mailgate.adapters.base import AliasStore, WatchRound
from mailgate.adapters.imap import flagwindow, folders, uidnext, uidset
from mailgate.adapters.imap.connect import NOT_A_REFUSAL, server_words
from mailgate.adapters.imap.messages import (
    all_uids,
    fetch_by_uid,
    fetch_summaries,
    folder_status,
    ids_for,
    unselect,
)
from mailgate.adapters.imap.own_changes import OwnRecords
from mailgate.adapters.imap.roles import is_view
from mailgate.domain.changes import ChangeSink, Event, payload
from mailgate.domain.ids import folder_id
from mailgate.store.db import session_scope
from mailgate.store.models import ImapFolderState

log = logging.getLogger("mailgate.imap.watch")


@dataclass
class Round:
    """What one watch round found; ``deferred``: some folders were left for the next round
    because the gateway itself was changing them."""

    events: list[Event] = field(default_factory=list)
    deferred: bool = False


@dataclass
class _Seen:
    """One folder as this round found it on the server, before own changes are dropped."""

    path: str
    state: ImapFolderState
    created: list[int] = field(default_factory=list)
    vanished: list[int] = field(default_factory=list)
    changed: dict[int, int | None] = field(default_factory=dict)  # uid -> its MODSEQ
    new_folder: bool = False


def poll(
    client: IMAPClient,
    aliases: AliasStore,
    engine: Engine,
    account_id: str,
    changes: ChangeSink,
    watched: set[str] | None = None,
) -> WatchRound:
    """One round over the account's folders (``watched``: the paths whose messages are
    watched, None for all); emits what changed in one transaction with the new progress.
    Rounds of one account run one at a time here; across processes the watcher's lease
    (events.watchers) sees to it."""
    with _round_lock(account_id):
        looking = _Poll(client, aliases, engine, account_id, changes, watched)
        found = looking.run()
    return WatchRound(events=len(found.events), deferred=found.deferred, inbox=looking.inbox)


_round_locks: dict[str, threading.Lock] = {}
_round_locks_guard = threading.Lock()


def _round_lock(account_id: str) -> threading.Lock:
    with _round_locks_guard:
        return _round_locks.setdefault(account_id, threading.Lock())


class _Poll:
    def __init__(
        self,
        client: IMAPClient,
        aliases: AliasStore,
        engine: Engine,
        account_id: str,
        changes: ChangeSink,
        watched: set[str] | None,
    ) -> None:
        self.changes = changes
        self.client = client
        self.aliases = aliases
        self.engine = engine
        self.account_id = account_id
        self.watched = watched
        self.condstore = client.has_capability("CONDSTORE")
        self.inbox: tuple[int, int] | None = None  # INBOX's (UIDNEXT, MESSAGES) when looked at
        with Session(engine) as session:
            self.known = {
                row.folder_path: row
                for row in session.exec(
                    sql_select(ImapFolderState).where(ImapFolderState.account_id == account_id)
                )
            }

    def run(self) -> Round:
        # 1. the server
        unselect(self.client)
        listed = folders.list_raw(self.client)
        initial = not self.known
        paths = {entry.path for entry in listed}
        gone = [path for path in self.known if path not in paths]
        made = set() if initial else paths - set(self.known)
        seen: list[_Seen] = []
        for entry in listed:
            before = self.known.get(entry.path)
            if not entry.selectable or not self._watches(entry):
                if before is None or before.uids is not None:
                    state = _unwatched(self.account_id, entry.path)
                    seen.append(_Seen(entry.path, state, new_folder=entry.path in made))
                continue
            if entry.path in made:
                before = _empty(self.account_id, entry.path)
            try:
                found = self._folder(entry.path, before)
            except NOT_A_REFUSAL:
                raise
            except imaplib.IMAP4.error as exc:
                self._refused(entry.path, exc)  # and the other folders go on
                continue
            if found is not None:
                found.new_folder = entry.path in made
                seen.append(found)
        # 2. what of it the gateway did itself
        with Session(self.engine) as session:
            own = OwnRecords(session, self.account_id)
        result = Round()
        if own.changing("*") and (gone or made):
            result.deferred = True  # the folder list is being changed: all of it next round
            return result
        events: list[Event] = []
        for path in gone:
            if not own.take(path, 0, 0, "destroyed"):
                events.append(Event("folder", folder_id(path), "destroyed"))
        kept: list[_Seen] = []
        for found in seen:
            if own.changing(found.path):
                result.deferred = True
                continue
            validity = found.state.uidvalidity
            if found.new_folder and own.take(found.path, 0, 0, "created"):
                found.new_folder = False  # the API renamed it here: its mail is not new
                found.created = []
            elif found.new_folder and own.take(found.path, 0, 0, "made"):
                found.new_folder = False  # the API made it empty: mail in it came since
            found.created = [  # (mail the API put there itself)
                u for u in found.created if not own.take(found.path, validity, u, "created")
            ]
            found.vanished = [
                u for u in found.vanished if not own.take(found.path, validity, u, "destroyed")
            ]
            found.changed = {
                u: m
                for u, m in found.changed.items()
                if not own.take(found.path, validity, u, "updated", m)
            }
            kept.append(found)
        # 3. the summaries of what others did
        by_path = {entry.path: entry for entry in listed}
        for found in list(kept):
            try:
                mine = self._message_events(found)
                if found.new_folder:
                    mine.insert(0, self._folder_event(listed, by_path[found.path]))
                events += mine  # all of the folder's events, or (on an error) none
            except NOT_A_REFUSAL:
                raise
            except imaplib.IMAP4.error as exc:  # e.g. deleted since: its progress stays as it was
                self._refused(found.path, exc)
                kept.remove(found)
                own.keep(found.path)
        result.events = events
        if kept or gone or events or own.matched:
            self._save(kept, gone, events, own)
        return result

    def _watches(self, entry: folders.ListedFolder) -> bool:
        """Whether the folder's messages are watched: the ones named in ``watched``, else
        every folder but views of mail kept elsewhere (Gmail's All Mail: roles.is_view)."""
        if self.watched is not None:
            return entry.path in self.watched
        return not is_view(entry.flags)

    def _refused(self, path: str, exc: imaplib.IMAP4.error) -> None:
        """A folder the server would not open or report on (no right to, deleted meanwhile):
        it is left as it was and tried again next round, so one folder never stops the rest."""
        log.warning(
            "folder skipped this round",
            extra={"account_id": self.account_id, "folder": path, "error": server_words(exc)},
        )

    def _folder(self, path: str, before: ImapFolderState | None) -> _Seen | None:
        """The folder as it is now, or None when nothing moved since ``before``."""
        items = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"] + (
            [b"HIGHESTMODSEQ"] if self.condstore else []
        )
        status = folder_status(self.client, path, items)
        if path.upper() == "INBOX":
            self.inbox = (int(status[b"UIDNEXT"]), int(status[b"MESSAGES"]))
        validity = int(status[b"UIDVALIDITY"])
        if before is None or before.uids is None or before.uidvalidity not in (validity, 0):
            if before is not None and before.uids is not None:
                log.warning(
                    "folder was recreated (UIDVALIDITY changed); watching it afresh",
                    extra={"account_id": self.account_id, "folder": path},
                )
            return self._baseline(path)
        now = (
            uidnext.of_status(status),
            int(status[b"MESSAGES"]),
            int(status[b"HIGHESTMODSEQ"]) if self.condstore else None,
        )
        # Without UIDNEXT in STATUS (mail.163.com, modern-email/defects #15), one message
        # gone and one come leave the counts alike: such a folder is opened every round.
        unchanged = (before.uidnext, before.messages, before.highestmodseq) == now
        if unchanged and before.uidvalidity and now[0] is not None and self.condstore:
            return None  # without CONDSTORE only the flags themselves tell (flagwindow)
        found = self._changes(path, before)
        if found.created or found.vanished or found.changed or _moved_on(before, found.state):
            return found
        return None  # opened for nothing (no CONDSTORE): no progress to write either

    def _baseline(self, path: str) -> _Seen:
        selected = self._open(path)
        uids = all_uids(self.client) if int(selected[b"EXISTS"]) else set()
        return _Seen(path, self._state(path, selected, uids, None, self._flags(uids)))

    def _open(self, path: str) -> dict[bytes, Any]:
        """SELECT, not EXAMINE: Courier-IMAP gives new mail its UIDs for good only in a
        read-write session; what a read-only one sees may be renumbered by the next (seen on
        the test matrix: a message appended meanwhile took the UID of one delivered before).
        Nothing here changes a message (summaries are fetched with BODY.PEEK)."""
        return dict(self.client.select_folder(path))

    def _flags(self, uids: set[int]) -> dict[int, int] | None:
        """Without CONDSTORE: the flag digests of the folder's newest messages."""
        if self.condstore:
            return None
        return flagwindow.digests(self.client, flagwindow.window(uids))

    def _changes(self, path: str, before: ImapFolderState) -> _Seen:
        selected = self._open(path)
        if before.uidvalidity not in (int(selected[b"UIDVALIDITY"]), 0):
            return self._baseline(path)
        known = uidset.decode(before.uids or "")
        current = set(known)
        if uidnext.of_selected(self.client, selected) > before.uidnext:
            found = self.client.search(["UID", f"{before.uidnext}:*"])
            current |= {u for u in found if u >= before.uidnext}
        if len(current) != int(selected[b"EXISTS"]):
            current = all_uids(self.client)  # something was expunged: which?
        changed: dict[int, int | None] = {}
        seen_modseq = None
        if self.condstore and before.highestmodseq is not None:
            # SEARCH MODSEQ (RFC 7162 section 3.1.5): changed since the last round, and the
            # highest mod-sequence among them, up to which this round has seen
            found, seen_modseq = _changed_since(self.client, before.highestmodseq)
            uids = sorted(u for u in found if u in known & current)
            if uids:
                fetched = fetch_by_uid(self.client, uids, [b"MODSEQ"])
                changed = {u: _modseq(d) for u, d in fetched.items()}
        flags = self._flags(current)
        if flags is not None:  # no CONDSTORE: what differs from last round's window
            last = flagwindow.decode(before.flag_window)
            changed = {
                u: v for u, v in flagwindow.changed(last, flags).items() if u in known & current
            }
        return _Seen(
            path,
            self._state(path, selected, current, seen_modseq, flags),
            created=sorted(current - known),
            vanished=sorted(known - current),
            changed=changed,
        )

    def _state(
        self,
        path: str,
        selected: dict[bytes, Any],
        uids: set[int],
        seen_modseq: int | None,
        flags: dict[int, int] | None,
    ) -> ImapFolderState:
        next_uid = max(uidnext.of_selected(self.client, selected), max(uids, default=0) + 1)
        highest = selected.get(b"HIGHESTMODSEQ") if self.condstore else None
        modseq = None if highest is None else max(int(highest), seen_modseq or 0)
        return ImapFolderState(
            account_id=self.account_id,
            folder_path=path,
            uidvalidity=int(selected[b"UIDVALIDITY"]),
            uidnext=next_uid,
            highestmodseq=modseq,
            messages=len(uids),
            uids=uidset.encode(uids),
            flag_window=None if flags is None else flagwindow.encode(flags),
        )

    def _message_events(self, found: _Seen) -> list[Event]:
        if not (found.created or found.changed or found.vanished):
            return []
        validity = found.state.uidvalidity
        events: list[Event] = []
        if found.created or found.changed:
            self._open(found.path)
        created = fetch_summaries(self.client, self.aliases, found.path, validity, found.created)
        for uid in sorted(created):
            events.append(Event("message", created[uid].id, "created", payload(created[uid])))
        updated = fetch_summaries(
            self.client, self.aliases, found.path, validity, sorted(found.changed)
        )
        for uid in sorted(updated):
            events.append(Event("message", updated[uid].id, "updated", payload(updated[uid])))
        for _uid, id_ in sorted(
            ids_for(self.aliases, found.path, validity, found.vanished).items()
        ):
            events.append(Event("message", id_, "destroyed"))
            self.aliases.forget(id_)
        return events

    def _folder_event(
        self, listed: list[folders.ListedFolder], entry: folders.ListedFolder
    ) -> Event:
        folder = folders.describe(self.client, listed, entry, *folders.counts(self.client, entry))
        return Event("folder", folder.id, "created", payload(folder))

    def _save(
        self, kept: list[_Seen], gone: list[str], events: list[Event], own: OwnRecords
    ) -> None:
        with session_scope(self.engine) as session:
            if gone:
                session.exec(
                    delete(ImapFolderState).where(
                        col(ImapFolderState.account_id) == self.account_id,
                        col(ImapFolderState.folder_path).in_(gone),
                    )
                )
            for found in kept:
                session.merge(found.state)
            own.save(session)
            self.changes(session, events)


def _changed_since(client: IMAPClient, modseq: int) -> tuple[list[int], int | None]:
    """UID SEARCH MODSEQ (RFC 7162 section 3.1.5): the UIDs changed after ``modseq`` and the
    highest mod-sequence among them. Cyrus 3.6 answers no match as ``* SEARCH (MODSEQ n)``,
    without UIDs, which section 3.1.5 forbids and imapclient cannot parse: that is none."""
    try:
        found = client.search(["MODSEQ", str(modseq + 1)])
    except ValueError:  # imapclient's "unexpected message list format"
        return [], None
    return [int(u) for u in found], getattr(found, "modseq", None)


def _moved_on(before: ImapFolderState, now: ImapFolderState) -> bool:
    """Whether the progress kept for a folder changed (so it must be written)."""
    fields = ("uidvalidity", "uidnext", "highestmodseq", "messages", "uids", "flag_window")
    return any(getattr(before, name) != getattr(now, name) for name in fields)


def _modseq(data: dict[bytes, Any]) -> int | None:
    value = data.get(b"MODSEQ")
    return int(value[0]) if value else None


def _empty(account_id: str, path: str) -> ImapFolderState:
    """The progress of a folder that did not exist: all mail in it is new."""
    return ImapFolderState(
        account_id=account_id, folder_path=path, uidvalidity=0, uidnext=1, messages=0, uids=""
    )


def _unwatched(account_id: str, path: str) -> ImapFolderState:
    """A folder known to exist but not watched: the next watched round takes a baseline."""
    return ImapFolderState(account_id=account_id, folder_path=path, uidvalidity=0, uidnext=0)
