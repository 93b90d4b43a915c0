"""Changes the gateway makes on the IMAP server itself. The API emits their events at once;
the watcher, which sees the same changes on the server a moment later, skips what is
recorded here, so one change is never two events, even when the watcher runs in another
process.

Ordering makes that hold without locks: before each change reaches the server, an *intent*
row for its folders is committed; once done, the intent is replaced by the exact records
(folder, UIDVALIDITY, UID, and for flags the new MODSEQ). The watcher reads these rows only
after it has looked at the server, so any change it saw had its intent (or records) stored
before, and it skips a folder while an intent on it is open."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from mailgate.adapters.imap import flagwindow, uidnext
from mailgate.adapters.imap.messages import fetch_by_uid, folder_status
from mailgate.store.db import session_scope
from mailgate.store.models import ImapOwnChange, as_utc, utcnow

INTENT = "pending"
ANY_FOLDER = "*"  # an intent on the folder list itself (create, rename, delete)
# An intent older than this belongs to a process that died mid-change: no longer waited for.
INTENT_MAX = timedelta(minutes=5)
# A record the watcher never matched (its folder not watched, or another client changed the
# message again before the watcher looked) is dropped after this long.
KEEP = timedelta(days=1)


@dataclass(frozen=True)
class OwnChange:
    path: str
    uidvalidity: int
    uid: int
    change: str  # created, updated or destroyed; made: a folder the API created (empty)
    modseq: int | None = None


class Recorder:
    """The records of one change in progress; see :func:`changing`."""

    def __init__(self) -> None:
        self.changes: list[OwnChange] = []

    def add(self, changes: Iterable[OwnChange]) -> None:
        self.changes.extend(changes)


@contextmanager
def changing(engine: Engine | None, account_id: str, paths: Iterable[str]) -> Iterator[Recorder]:
    """Wrap one change of the server: the intent on ``paths`` is stored first; the records
    added to the yielded recorder replace it at the end (also when the change failed half
    way: what reached the server is recorded)."""
    recorder = Recorder()
    if engine is None:
        yield recorder
        return
    intents = [
        ImapOwnChange(account_id=account_id, folder_path=p, uidvalidity=0, uid=0, change=INTENT)
        for p in dict.fromkeys(paths)
    ]
    with session_scope(engine) as session:
        session.add_all(intents)
    try:
        yield recorder
    finally:
        with session_scope(engine) as session:
            session.exec(
                delete(ImapOwnChange).where(col(ImapOwnChange.id).in_([i.id for i in intents]))
            )
            session.add_all(
                ImapOwnChange(
                    account_id=account_id,
                    folder_path=c.path,
                    uidvalidity=c.uidvalidity,
                    uid=c.uid,
                    change=c.change,
                    modseq=c.modseq,
                )
                for c in recorder.changes
            )


def flag_changes(
    client: IMAPClient, path: str, uidvalidity: int, uids: list[int]
) -> list[OwnChange]:
    """The records for a flag change just made, with the version of each message's flags the
    watcher will compare: the new MODSEQ with CONDSTORE, else a digest of the flags
    (adapters.imap.flagwindow), so only exactly this change is skipped, never a later one."""
    if not uids:
        return []
    if client.has_capability("CONDSTORE"):
        fetched = fetch_by_uid(client, uids, [b"MODSEQ"])
        return [
            OwnChange(path, uidvalidity, int(uid), "updated", int(data[b"MODSEQ"][0]))
            for uid, data in fetched.items()
            if b"MODSEQ" in data
        ]
    return [
        OwnChange(path, uidvalidity, uid, "updated", digest)
        for uid, digest in flagwindow.digests(client, uids).items()
    ]


class Arrivals:
    """New mail the gateway itself puts into a folder on a server without UIDPLUS, which does
    not say the new UIDs: told by UIDNEXT before and after. Only when exactly as many UIDs were
    given out as messages were put there are they ours; otherwise nothing is recorded (another
    message came meanwhile), so at worst the watcher reports a copy twice, never hides mail."""

    def __init__(self, client: IMAPClient, path: str) -> None:
        self.client, self.path = client, path
        self.before = None if client.has_capability("UIDPLUS") else _next_uid(client, path)

    def records(self, count: int) -> list[OwnChange]:
        """The records of ``count`` messages just put there (none with UIDPLUS: COPYUID said)."""
        if self.before is None:
            return []
        after = _next_uid(self.client, self.path)
        if after is None or after[0] != self.before[0] or after[1] - self.before[1] != count:
            return []
        validity, next_uid = after
        return [
            OwnChange(self.path, validity, uid, "created")
            for uid in range(self.before[1], next_uid)
        ]


def _next_uid(client: IMAPClient, path: str) -> tuple[int, int] | None:
    """(UIDVALIDITY, UIDNEXT) by STATUS; None where the server leaves UIDNEXT out (then
    nothing is recorded, and the watcher may report the gateway's own copy once more)."""
    status = folder_status(client, path, [b"UIDVALIDITY", b"UIDNEXT"])
    next_uid = uidnext.of_status(status)
    return None if next_uid is None else (int(status[b"UIDVALIDITY"]), next_uid)


class OwnRecords:
    """The account's records and open intents, read after the watcher looked at the server."""

    def __init__(self, session: Session, account_id: str) -> None:
        self.account_id = account_id
        now = utcnow()
        self.rows: list[ImapOwnChange] = []
        self.busy: set[str] = set()
        for row in session.exec(
            select(ImapOwnChange).where(ImapOwnChange.account_id == account_id)
        ):
            if row.change != INTENT:
                self.rows.append(row)
            elif now - as_utc(row.created_at) < INTENT_MAX:
                self.busy.add(row.folder_path)
        self.matched: dict[int, str] = {}  # record id -> its folder

    def changing(self, path: str) -> bool:
        """Whether a change of the folder (or of the folder list) is in flight right now."""
        return path in self.busy or ANY_FOLDER in self.busy

    def take(
        self, path: str, uidvalidity: int, uid: int, change: str, modseq: int | None = None
    ) -> bool:
        """True (and the record is used up) when the gateway made this change itself."""
        for row in self.rows:
            if (row.folder_path, row.uidvalidity, row.uid, row.change) == (
                path,
                uidvalidity,
                uid,
                change,
            ) and (change != "updated" or row.modseq == modseq):
                self.rows.remove(row)
                self.matched[row.id or 0] = path
                return True
        return False

    def keep(self, path: str) -> None:
        """The round gives up on this folder: its records stay for the next round."""
        self.matched = {id_: p for id_, p in self.matched.items() if p != path}

    def save(self, session: Session) -> None:
        """Drop the records used up this round, those too old to match any more, and the
        intents of processes that died mid-change."""
        now = utcnow()
        session.exec(
            delete(ImapOwnChange).where(
                col(ImapOwnChange.account_id) == self.account_id,
                col(ImapOwnChange.id).in_(list(self.matched))
                | (col(ImapOwnChange.created_at) < now - KEEP)
                | (
                    (col(ImapOwnChange.change) == INTENT)
                    & (col(ImapOwnChange.created_at) < now - INTENT_MAX)
                ),
            )
        )
