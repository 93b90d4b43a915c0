"""Fixed-window request counters in the database, so that every process counts together."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mailgate.store.models import RateCounter

_TABLE: Any = RateCounter.__table__  # type: ignore[attr-defined]  # sqlmodel declares it untyped


def count_request(connection: Connection, subject: str, window_start: int) -> int:
    """Count one request of ``subject`` in the window beginning at ``window_start`` and
    answer how many it has made in it, this one included. One statement, atomic on both
    databases: a window newer than the row's starts the count again."""
    insert = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(
        _TABLE
    )
    statement = insert.values(subject=subject, window_start=window_start, count=1)
    same_window = _TABLE.c.window_start == statement.excluded.window_start
    upsert = statement.on_conflict_do_update(
        index_elements=[_TABLE.c.subject],
        set_={
            "count": sa.case((same_window, _TABLE.c.count + 1), else_=1),
            "window_start": statement.excluded.window_start,
        },
    )
    return int(connection.execute(upsert.returning(_TABLE.c.count)).scalar_one())


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
