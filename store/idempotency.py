"""The rows behind ``Idempotency-Key``: one per API key and key, claimed by an INSERT (the
primary key refuses a second), completed with the answer or released by the execution that
claimed it (its ``claim`` token), taken over by compare-and-set. Every statement commits on
its own (one round trip); the policy (how long a row counts, when a claim is stale) is
gateway.idempotency's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from mailgate.store.db import autocommit
from mailgate.store.models import IdempotencyRecord, as_utc

_TABLE = IdempotencyRecord.__table__  # type: ignore[attr-defined]  # SQLModel's table


@dataclass(frozen=True)
class StoredResponse:
    """What a completed request answered: replayed as it was."""

    status_code: int
    content_type: str | None
    location: str | None
    body: bytes


@dataclass(frozen=True)
class Record:
    claim: str
    running: bool
    created_at: datetime
    fingerprint: str | None
    response: StoredResponse | None


def _this(scope: str, key: str) -> ColumnElement[bool]:
    return and_(col(IdempotencyRecord.scope) == scope, col(IdempotencyRecord.idem_key) == key)


def insert_claim(engine: Engine, scope: str, key: str, claim: str, now: datetime) -> bool:
    """A new running row; False when there is one already."""
    row = {"scope": scope, "idem_key": key, "claim": claim, "running": True, "created_at": now}
    try:
        with autocommit(engine) as connection:
            connection.execute(insert(_TABLE), row)
    except IntegrityError:
        return False
    return True


def find(engine: Engine, scope: str, key: str) -> Record | None:
    with autocommit(engine) as connection:
        row = connection.execute(select(_TABLE).where(_this(scope, key))).mappings().first()
    if row is None:
        return None
    response = None
    if not row["running"] and row["status_code"] is not None:
        response = StoredResponse(
            row["status_code"], row["content_type"], row["location"], bytes(row["body"] or b"")
        )
    return Record(
        row["claim"], row["running"], as_utc(row["created_at"]), row["fingerprint"], response
    )


def take_over(
    engine: Engine, scope: str, key: str, old_claim: str, new_claim: str, now: datetime
) -> bool:
    """Make the row a new running claim, if it is still the one held by ``old_claim``."""
    return _update_claim(
        engine,
        scope,
        key,
        old_claim,
        claim=new_claim,
        running=True,
        fingerprint=None,
        status_code=None,
        content_type=None,
        location=None,
        body=None,
        created_at=now,
    )


def complete(
    engine: Engine, scope: str, key: str, claim: str, fingerprint: str, response: StoredResponse
) -> bool:
    """Keep the answer; False when the claim was lost meanwhile (taken over as stale)."""
    return _update_claim(
        engine,
        scope,
        key,
        claim,
        running=False,
        fingerprint=fingerprint,
        status_code=response.status_code,
        content_type=response.content_type,
        location=response.location,
        body=response.body,
    )


def _update_claim(engine: Engine, scope: str, key: str, held: str, **values: object) -> bool:
    """Set ``values`` on the row if the claim ``held`` still holds it; whether it did."""
    with autocommit(engine) as connection:
        result = connection.execute(
            update(_TABLE)
            .where(_this(scope, key), col(IdempotencyRecord.claim) == held)
            .values(**values)
        )
    return bool(result.rowcount)


def release(engine: Engine, scope: str, key: str, claim: str) -> None:
    """Drop the claim, so that a retry executes."""
    with autocommit(engine) as connection:
        connection.execute(
            delete(_TABLE).where(_this(scope, key), col(IdempotencyRecord.claim) == claim)
        )


def delete_older_than(engine: Engine, cutoff: datetime) -> int:
    with autocommit(engine) as connection:
        result = connection.execute(
            delete(_TABLE).where(col(IdempotencyRecord.created_at) < cutoff)
        )
    return int(result.rowcount)
