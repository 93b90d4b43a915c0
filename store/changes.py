"""The change log: what changed in an account, in order, for delta sync (``/changes``).

A client's state is the number of the account's last change it has seen (each account counts
its own: a tenant learns nothing of the others); changes since then collapse per object
(JMAP style, RFC 8620 section 5.2): created, then changed, then destroyed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from mailgate.domain.changes import Change, Kind
from mailgate.store.models import ChangeCounter, ChangeLog

EVENT_KIND = "event"  # a row that is an event of no message or folder (message.sent, ...)


def record(
    connection: Connection,
    account_id: str,
    entries: Iterable[tuple[Kind | str, str, Change]],
    events: Sequence[str | None] | None = None,
) -> None:
    """Append changes, in the caller's transaction (so they commit with the change), numbered
    after the account's last one, each with its event body (``events``, JSON, in the same
    order; None: no event). Taking the numbers locks the account's counter row until the
    transaction ends, so an account's changes commit in the order they are numbered: a
    reader that has seen number n never sees a number below n appear later."""
    listed = list(entries)
    if not listed:
        return
    bodies = list(events) if events is not None else [None] * len(listed)
    assert len(bodies) == len(listed), "one event body (or None) per change"
    last = _take_numbers(connection, account_id, len(listed))
    first = last - len(listed) + 1
    rows = [
        {
            "account_id": account_id,
            "account_seq": first + index,
            "kind": kind,
            "object_id": object_id,
            "change": change,
            "event": body,
        }
        for index, ((kind, object_id, change), body) in enumerate(zip(listed, bodies, strict=True))
    ]
    connection.execute(insert(ChangeLog), rows)


def _take_numbers(connection: Connection, account_id: str, count: int) -> int:
    """Advance the account's counter by ``count``; returns its new last number."""
    dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(ChangeCounter)
        .values(account_id=account_id, last=count)
        .on_conflict_do_update(
            index_elements=["account_id"], set_={"last": col(ChangeCounter.last) + count}
        )
        .returning(col(ChangeCounter.last))
    )
    return int(connection.execute(statement).scalar_one())


def record_now(
    engine: Engine, account_id: str, entries: Iterable[tuple[Kind, str, Change]]
) -> None:
    """Append changes in a transaction of their own: for changes made on a mail server."""
    with engine.begin() as connection:
        record(connection, account_id, entries)


def current_state(engine: Engine, account_id: str) -> int:
    """The number of the account's last change (0: none yet)."""
    with engine.connect() as connection:
        value = connection.execute(
            select(col(ChangeCounter.last)).where(col(ChangeCounter.account_id) == account_id)
        ).scalar_one_or_none()
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
                col(ChangeLog.account_seq),
                col(ChangeLog.kind),
                col(ChangeLog.object_id),
                col(ChangeLog.change),
            )
            .where(col(ChangeLog.account_id) == account_id, col(ChangeLog.account_seq) > since)
            .order_by(col(ChangeLog.account_seq))
            .limit(limit)
        ).all()
    if not rows and since > current_state(engine, account_id):
        raise StateTooNew(since)
    first: dict[tuple[str, str], str] = {}
    last: dict[tuple[str, str], str] = {}
    for _, kind, object_id, change in rows:
        if kind not in ("message", "folder"):  # an event of no object: nothing to sync
            continue
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


def current_states(engine: Engine, account_ids: Iterable[str]) -> dict[str, int]:
    """The last change number of each account (0: none yet)."""
    wanted = list(account_ids)
    if not wanted:
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(col(ChangeCounter.account_id), col(ChangeCounter.last)).where(
                col(ChangeCounter.account_id).in_(wanted)
            )
        ).all()
    found = {account_id: int(last) for account_id, last in rows}
    return {account_id: found.get(account_id, 0) for account_id in wanted}


@dataclass(frozen=True)
class LoggedEvent:
    account_id: str
    number: int  # the account's change number: its state once this event is seen
    body: str | None  # the event body (JSON); None: a change that is no event


def events_after(
    engine: Engine, positions: Mapping[str, int], limit: int = 500
) -> list[LoggedEvent]:
    """The changes of each account after its position, in each account's order (accounts
    interleaved by when their changes were logged), at most ``limit``."""
    if not positions:
        return []
    after = sa.or_(
        *(
            sa.and_(col(ChangeLog.account_id) == account_id, col(ChangeLog.account_seq) > seq)
            for account_id, seq in positions.items()
        )
    )
    with engine.connect() as connection:
        rows = connection.execute(
            select(col(ChangeLog.account_id), col(ChangeLog.account_seq), col(ChangeLog.event))
            .where(after)
            .order_by(col(ChangeLog.seq))
            .limit(limit)
        ).all()
    return [LoggedEvent(account_id, int(number), body) for account_id, number, body in rows]
