"""Leases: one owner at a time for a piece of background work, across gateway processes.
A lease lapses when its owner stops renewing it (crashed, stopped, cut off)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from mailgate.store.db import session_scope
from mailgate.store.heartbeat import heartbeat
from mailgate.store.models import Lease, utcnow


def acquire(engine: Engine, name: str, owner: str, ttl: timedelta) -> bool:
    """Take or renew the lease; False while someone else holds it."""
    now = utcnow()
    with session_scope(engine) as session:
        taken = session.execute(
            update(Lease)
            .where(
                col(Lease.name) == name,
                (col(Lease.owner) == owner) | (col(Lease.expires_at) < now),
            )
            .values(owner=owner, expires_at=now + ttl)
        )
        if taken.rowcount:  # type: ignore[attr-defined]  # a DML Result is a CursorResult
            return True
    try:
        with session_scope(engine) as session:
            session.add(Lease(name=name, owner=owner, expires_at=now + ttl))
    except IntegrityError:
        return False  # someone else holds it (or took it a moment ago)
    return True


def release(engine: Engine, name: str, owner: str) -> None:
    with session_scope(engine) as session:
        session.exec(delete(Lease).where(col(Lease.name) == name, col(Lease.owner) == owner))


@contextmanager
def renewed(engine: Engine, name: str, owner: str, ttl: timedelta) -> Iterator[None]:
    """While the block runs, renew the lease ``owner`` holds every third of ``ttl``: the
    lease can be short, so a process that dies mid-way lets the next one in within ``ttl``,
    however long the work takes."""
    with heartbeat(ttl.total_seconds() / 3, lambda: acquire(engine, name, owner, ttl), name):
        yield


def renew_owned(engine: Engine, owner_prefix: str, ttl: timedelta) -> set[str]:
    """Renew, in one statement, every lease held by an owner named ``owner_prefix:…`` (one
    process's many watchers); the names of those it holds. A lease another owner took over
    meanwhile is not among them: its old holder must stop."""
    now = utcnow()
    mine = col(Lease.owner).like(_escaped(owner_prefix) + ":%", escape="\\")
    with session_scope(engine) as session:
        session.execute(update(Lease).where(mine).values(expires_at=now + ttl))
        return set(session.exec(select(Lease.name).where(mine)).all())


def live_owners(engine: Engine, name_prefix: str) -> list[str]:
    """The owners of the unexpired leases whose names start with ``name_prefix``."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Lease.owner).where(
                col(Lease.name).like(_escaped(name_prefix) + "%", escape="\\"),
                col(Lease.expires_at) >= utcnow(),
            )
        )
        return sorted(rows.all())


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
