"""Leases: one owner at a time for a piece of background work, across gateway processes.
A lease lapses when its owner stops renewing it (crashed, stopped, cut off)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete

from mailgate.store.db import session_scope
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
