"""The change log: what changed in an account, in order, for delta sync (``/changes``).

A client's state is the log position it has seen; changes since then collapse per object
(JMAP style, RFC 8620 section 5.2): created, then changed, then destroyed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from mailgate.domain.changes import Change, Kind
from mailgate.store.models import ChangeLog


def record(
    connection: Connection, account_id: str, entries: Iterable[tuple[Kind, str, Change]]
) -> None:
    """Append changes, in the caller's transaction (so they commit with the change)."""
    rows = [
        {"account_id": account_id, "kind": kind, "object_id": object_id, "change": change}
        for kind, object_id, change in entries
    ]
    if rows:
        connection.execute(insert(ChangeLog), rows)


def record_now(
    engine: Engine, account_id: str, entries: Iterable[tuple[Kind, str, Change]]
) -> None:
    """Append changes in a transaction of their own: for changes made on a mail server."""
    with engine.begin() as connection:
        record(connection, account_id, entries)


def current_state(engine: Engine, account_id: str) -> int:
    with engine.connect() as connection:
        value = connection.execute(
            select(func.max(col(ChangeLog.seq))).where(col(ChangeLog.account_id) == account_id)
        ).scalar_one()
    return int(value or 0)


@dataclass
class Delta:
    state: int
    created: dict[str, list[str]] = field(default_factory=lambda: {"message": [], "folder": []})
    updated: dict[str, list[str]] = field(default_factory=lambda: {"message": [], "folder": []})
    destroyed: dict[str, list[str]] = field(default_factory=lambda: {"message": [], "folder": []})


class StateTooNew(ValueError):
    """The client claims a state this account never had."""


def changes_since(engine: Engine, account_id: str, since: int, limit: int = 10_000) -> Delta:
    """What changed after ``since``; ``state`` is where the answer ends (pass it next time)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                col(ChangeLog.seq),
                col(ChangeLog.kind),
                col(ChangeLog.object_id),
                col(ChangeLog.change),
            )
            .where(col(ChangeLog.account_id) == account_id, col(ChangeLog.seq) > since)
            .order_by(col(ChangeLog.seq))
            .limit(limit)
        ).all()
    if not rows and since > current_state(engine, account_id):
        raise StateTooNew(since)
    first: dict[tuple[str, str], str] = {}
    last: dict[tuple[str, str], str] = {}
    for _, kind, object_id, change in rows:
        first.setdefault((kind, object_id), change)
        last[(kind, object_id)] = change
    delta = Delta(state=int(rows[-1][0] or 0) if rows else since)
    for key, final in last.items():
        kind, object_id = key
        born = first[key] == "created"
        if final == "destroyed":
            if not born:  # made and gone inside the window: the client never saw it
                delta.destroyed[kind].append(object_id)
        elif born:
            delta.created[kind].append(object_id)
        else:
            delta.updated[kind].append(object_id)
    return delta
