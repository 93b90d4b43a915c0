"""Claims on queue rows (the webhook outbox, submissions): short, and renewed while the work
runs, so a process that dies lets the others in within one ``ttl``, however long its work
would have taken.

A row is claimed by setting ``claimed_until`` (now + ``ttl``) and ``claimed_by`` (the
claiming round's owner id) in one conditional UPDATE of the caller's. A heartbeat thread
(:func:`renewed`) then extends ``claimed_until`` of every row the round still holds, one
UPDATE a beat (by primary key and owner), every third of ``ttl``. The owner, not the
moving ``claimed_until``, tells a holder it still holds a row: its writes are conditional on
``claimed_by``. A row another process took after its claim lapsed (this one stalled longer
than ``ttl``) is not renewed and drops out of :meth:`Claim.holds`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mailgate.store.heartbeat import heartbeat
from mailgate.store.models import utcnow


def claimable(table: sa.Table, now: datetime) -> sa.ColumnElement[bool]:
    """Rows nobody holds: never claimed, released, or whose claim lapsed."""
    return sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)


class Claim:
    """The rows of ``table`` one round claimed as ``owner``; thread-safe."""

    def __init__(
        self, engine: Engine, table: sa.Table, owner: str, ids: Iterable[str], ttl: timedelta
    ) -> None:
        self.engine, self.table, self.owner, self.ttl = engine, table, owner, ttl
        self._held = set(ids)
        self._lock = threading.Lock()

    def holds(self, row_id: str) -> bool:
        """Claimed here, not let go, and not seen taken by another process."""
        with self._lock:
            return row_id in self._held

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def let_go(self, ids: Iterable[str]) -> None:
        """No longer renewed (recorded, released, or left to lapse)."""
        with self._lock:
            self._held.difference_update(ids)

    def renew(self) -> int:
        """Extend the claim of every row still held, in one UPDATE; returns how many."""
        ids = self.held()
        if not ids:
            return 0
        table = self.table
        with self.engine.begin() as connection:
            kept = set(
                connection.execute(
                    sa.update(table)
                    .where(table.c.id.in_(ids), table.c.claimed_by == self.owner)
                    .values(claimed_until=utcnow() + self.ttl)
                    .returning(table.c.id)
                ).scalars()
            )
        lost = set(ids) - kept  # done meanwhile, or taken by another process
        self.let_go(lost)
        return len(kept)

    def release(self, ids: Iterable[str], **values: object) -> None:
        """Give rows back at once (those still this owner's), for any process to claim;
        ``values`` are set on them too."""
        ids = list(ids)
        if not ids:
            return
        table = self.table
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(table)
                .where(table.c.id.in_(ids), table.c.claimed_by == self.owner)
                .values(claimed_until=None, claimed_by=None, **values)
            )
        self.let_go(ids)


@contextmanager
def renewed(claim: Claim) -> Iterator[Claim]:
    """While the block runs, a heartbeat renews ``claim`` every third of its ttl; it stops
    with the block (the rows still held then lapse within the ttl unless released)."""
    with heartbeat(claim.ttl.total_seconds() / 3, claim.renew, f"claims-{claim.table.name}"):
        yield claim
