"""Events: the change log entry and the webhook outbox rows of one change, written in the
caller's transaction, so an event exists exactly when the change that caused it does."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import event as sa_event
from sqlmodel import Session, col, select

from mailgate.domain.changes import Event
from mailgate.domain.ids import new_id
from mailgate.store.changes import record
from mailgate.store.models import Account, WebhookEndpoint, WebhookEvent, utcnow

# Rung after a commit that queued webhooks, so this process's dispatcher sends them at once
# instead of at its next poll (other processes' dispatchers still find them by polling).
queued = threading.Event()
_QUEUED = "mailgate.webhooks_queued"


@sa_event.listens_for(Session, "after_commit")
def _ring_after_commit(session: Session) -> None:
    if session.info.pop(_QUEUED, False):
        queued.set()


def emit(session: Session, account_id: str, events: list[Event], webhooks: bool = True) -> None:
    """Log the changes and queue their webhooks, in ``session``'s transaction."""
    if not events:
        return
    record(session.connection(), account_id, [(e.kind, e.object_id, e.change) for e in events])
    if not webhooks:
        return
    account = session.get(Account, account_id)
    if account is None:
        return
    for event in events:
        enqueue(
            session,
            account.tenant_id,
            account_id,
            event.webhook_type,
            event.data or {"id": event.object_id},
        )


def enqueue(
    session: Session,
    tenant_id: str,
    account_id: str,
    event_type: str,
    data: dict[str, Any],
    endpoints: Sequence[WebhookEndpoint] | None = None,
) -> list[str]:
    """Write one outbox row per matching enabled endpoint, in the caller's transaction.

    The caller commits: an event exists exactly when the change that caused it does. Each
    row's id is the `webhook-id` the receiver sees (the same on every retry). Returns the
    new event ids. ``endpoints`` (the tenant's, from :func:`enabled_endpoints`) saves a
    query per event when one transaction queues many.
    """
    if endpoints is None:
        endpoints = enabled_endpoints(session, tenant_id)
    body = json.dumps(
        {
            "type": event_type,
            "timestamp": iso_utc(utcnow()),
            "data": {"account_id": account_id, **to_jsonable_python(data)},
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    created: list[str] = []
    for endpoint in endpoints:
        accounts = None if endpoint.account_ids is None else json.loads(endpoint.account_ids)
        if event_type in json.loads(endpoint.events) and (
            accounts is None or account_id in accounts
        ):
            event = WebhookEvent(
                id=new_id("evt"), endpoint_id=endpoint.id, type=event_type, payload=body
            )
            session.add(event)
            created.append(event.id)
    if created:
        session.info[_QUEUED] = True
    return created


def enabled_endpoints(session: Session, tenant_id: str) -> Sequence[WebhookEndpoint]:
    return session.exec(
        select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, col(WebhookEndpoint.enabled).is_(True)
        )
    ).all()


def iso_utc(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as webhook payloads carry timestamps."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
