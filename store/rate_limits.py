"""Fixed-window request counters in the database, so that every process counts together."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mailgate.store.models import RateCounter

_TABLE: Any = RateCounter.__table__  # type: ignore[attr-defined]  # sqlmodel declares it untyped


def _upsert(dialect: str) -> Any:
    """The counting statement of :func:`count_request` for ``dialect``, with bound
    parameters ``subject``, ``window_start`` and ``amount``."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_TABLE)
    statement = insert.values(
        subject=sa.bindparam("subject"),
        window_start=sa.bindparam("window_start"),
        count=sa.bindparam("amount"),
    )
    same_window = _TABLE.c.window_start == statement.excluded.window_start
    upsert = statement.on_conflict_do_update(
        index_elements=[_TABLE.c.subject],
        set_={
            "count": sa.case(
                (same_window, _TABLE.c.count + statement.excluded.count),
                else_=statement.excluded.count,
            ),
            "window_start": statement.excluded.window_start,
        },
    )
    return upsert.returning(_TABLE.c.count)


# Built once per dialect: the statement is the same on every request, and building it (and
# its cache key) was most of the Python time of counting one.
_UPSERTS = {name: _upsert(name) for name in ("postgresql", "sqlite")}


def count_request(connection: Connection, subject: str, window_start: int, amount: int = 1) -> int:
    """Count ``amount`` requests of ``subject`` in the window beginning at ``window_start``
    and answer how many it has made in it, these included. One statement, atomic on both
    databases: a window newer than the row's starts the count again."""
    upsert = _UPSERTS["postgresql" if connection.dialect.name == "postgresql" else "sqlite"]
    params = {"subject": subject, "window_start": window_start, "amount": amount}
    return int(connection.execute(upsert, params).scalar_one())


def requests_in_window(connection: Connection, subject: str, window_start: int) -> int:
    """How many requests ``subject`` made in the window beginning at ``window_start``."""
    found = connection.execute(
        sa.select(_TABLE.c.count).where(
            _TABLE.c.subject == subject, _TABLE.c.window_start == window_start
        )
    ).scalar_one_or_none()
    return int(found or 0)


def forget_before(connection: Connection, window_start: int) -> int:
    """Drop the counters of windows that began before ``window_start``; how many went."""
    result = connection.execute(sa.delete(_TABLE).where(_TABLE.c.window_start < window_start))
    return int(result.rowcount)
