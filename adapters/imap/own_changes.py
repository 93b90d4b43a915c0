"""Changes the gateway made on the IMAP server itself. The API emits their events at once;
the watcher, which sees the same changes on the server a moment later, skips what is
recorded here, so one change is never two events.

Within one process the per-account lock closes the gap between a change reaching the server
and its record: the watcher takes the same lock for its rounds."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from store.db import session_scope
from store.models import ImapOwnChange, as_utc, utcnow

# An unmatched record (its folder not watched, or the server never showed the change) is
# dropped after this long.
KEEP = timedelta(hours=1)

_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def lock_for(account_id: str) -> threading.RLock:
    with _locks_guard:
        return _locks.setdefault(account_id, threading.RLock())


@dataclass(frozen=True)
class OwnChange:
    path: str
    uidvalidity: int
    uid: int
    change: str  # created, updated or destroyed
    modseq: int | None = None


def record(engine: Engine | None, account_id: str, changes: Iterable[OwnChange]) -> None:
    rows = [
        ImapOwnChange(
            account_id=account_id,
            folder_path=c.path,
            uidvalidity=c.uidvalidity,
            uid=c.uid,
            change=c.change,
            modseq=c.modseq,
        )
        for c in changes
    ]
    if engine is None or not rows:
        return
    with session_scope(engine) as session:
        session.add_all(rows)


def flag_changes(
    client: IMAPClient, path: str, uidvalidity: int, uids: list[int]
) -> list[OwnChange]:
    """The records for a flag change just made: with CONDSTORE, each message's new MODSEQ, so
    only exactly this change is skipped (the server reports later ones with higher values).
    Without CONDSTORE the watcher cannot see flag changes at all, so there is nothing to skip."""
    if not uids or not client.has_capability("CONDSTORE"):
        return []
    fetched = client.fetch(uids, [b"MODSEQ"])
    return [
        OwnChange(path, uidvalidity, int(uid), "updated", int(data[b"MODSEQ"][0]))
        for uid, data in fetched.items()
        if b"MODSEQ" in data
    ]


class Pending:
    """The account's unmatched records, loaded once per watch round (under the lock)."""

    def __init__(self, session: Session, account_id: str) -> None:
        self.account_id = account_id
        self.rows = list(
            session.exec(select(ImapOwnChange).where(ImapOwnChange.account_id == account_id))
        )
        self.matched: list[int] = []

    def folder(self, path: str, uidvalidity: int) -> list[ImapOwnChange]:
        return [r for r in self.rows if r.folder_path == path and r.uidvalidity == uidvalidity]

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
                self.matched.append(row.id or 0)
                return True
        return False

    @property
    def dirty(self) -> bool:
        return bool(self.matched) or any(as_utc(r.created_at) < utcnow() - KEEP for r in self.rows)

    def save(self, session: Session) -> None:
        """Drop the records used up this round and those too old to match any more."""
        session.exec(
            delete(ImapOwnChange).where(  # type: ignore[call-overload]
                col(ImapOwnChange.account_id) == self.account_id,
                col(ImapOwnChange.id).in_(self.matched)
                | (col(ImapOwnChange.created_at) < utcnow() - KEEP),
            )
        )
