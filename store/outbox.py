"""Events: the change log entry and the webhook outbox rows of one change, written in the
caller's transaction, so an event exists exactly when the change that caused it does."""

from __future__ import annotations

import asyncio
import contextlib
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
from mailgate.store.changes import EVENT_KIND, record
from mailgate.store.models import Account, WebhookEndpoint, WebhookEvent, utcnow


class Bell:
    """Wakes the event loops waiting on it, from any thread (a commit in a worker thread
    rings it; event streams wait on their own loop). ``rung`` counts the rings, so a waiter
    that read it before looking misses no ring that came while it looked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.rung = 0

    @property
    def waiting(self) -> int:
        """How many waiters there are now."""
        return len(self._waiters)

    def ring(self) -> None:
        with self._lock:
            self.rung += 1
            waiters = list(self._waiters)
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(waiter.set)

    async def wait(self, seconds: float, seen: int) -> bool:
        """Until the bell rings after it had rung ``seen`` times, or ``seconds`` pass;
        True when it rang."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            if self.rung != seen:
                return True
            self._waiters.add(waiter)
        try:
            async with asyncio.timeout(max(seconds, 0)):
                await waiter[1].wait()
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(waiter)


# Rung after a commit that queued webhooks, so this process's dispatcher sends them at once
# instead of at its next poll (other processes' dispatchers still find them by polling).
queued = threading.Event()
_QUEUED = "mailgate.webhooks_queued"
# Rung after a commit that logged events, so this process's event streams send them at once
# (streams still poll for those of other processes).
logged = Bell()
_LOGGED = "mailgate.events_logged"
# Rung after a commit that added, changed or removed an account, so this process's IMAP
# watchers start watching a new account at once (not at their next bookkeeping round).
accounts_changed = Bell()
_ACCOUNTS = "mailgate.accounts_changed"


@sa_event.listens_for(Session, "after_flush")
def _note_accounts(session: Session, _context: object) -> None:
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(instance, Account) for instance in touched):
        session.info[_ACCOUNTS] = True


@sa_event.listens_for(Session, "after_commit")
def _ring_after_commit(session: Session) -> None:
    if session.info.pop(_QUEUED, False):
        queued.set()
    if session.info.pop(_LOGGED, False):
        logged.ring()
    if session.info.pop(_ACCOUNTS, False):
        accounts_changed.ring()


def emit(session: Session, account_id: str, events: list[Event], webhooks: bool = True) -> None:
    """Log the changes with their events and queue their webhooks, in ``session``'s
    transaction. Without ``webhooks`` the changes are logged as no events."""
    if not events:
        return
    entries = [(e.kind, e.object_id, e.change) for e in events]
    account = session.get(Account, account_id) if webhooks else None
    if account is None:
        record(session.connection(), account_id, entries)
        return
    bodies = [
        event_body(event.webhook_type, account_id, event.data or {"id": event.object_id})
        for event in events
    ]
    record(session.connection(), account_id, entries, bodies)
    session.info[_LOGGED] = True
    endpoints = enabled_endpoints(session, account.tenant_id)
    for event, body in zip(events, bodies, strict=True):
        enqueue(
            session,
            account.tenant_id,
            account_id,
            event.webhook_type,
            event.data or {"id": event.object_id},
            endpoints,
            body=body,
        )


def publish(
    session: Session,
    tenant_id: str,
    account_id: str,
    event_type: str,
    data: dict[str, Any],
    endpoints: Sequence[WebhookEndpoint] | None = None,
) -> None:
    """An event of no message or folder (``message.sent``, ``account.error``): logged for the
    event streams and queued for webhooks, in the caller's transaction. It takes the
    account's change number (the counter row stays locked until the commit)."""
    publish_all(session, tenant_id, account_id, [(event_type, data)], endpoints)


def publish_all(
    session: Session,
    tenant_id: str,
    account_id: str,
    events: Sequence[tuple[str, dict[str, Any]]],
    endpoints: Sequence[WebhookEndpoint] | None = None,
) -> None:
    """Several such events of one account: numbered and logged together (one counter
    update and one insert), each queued for webhooks."""
    if not events:
        return
    bodies = [event_body(event_type, account_id, data) for event_type, data in events]
    entries = [(EVENT_KIND, event_type, "created") for event_type, _ in events]
    record(session.connection(), account_id, entries, bodies)  # type: ignore[arg-type]
    session.info[_LOGGED] = True
    if endpoints is None:
        endpoints = enabled_endpoints(session, tenant_id)
    for (event_type, data), body in zip(events, bodies, strict=True):
        enqueue(session, tenant_id, account_id, event_type, data, endpoints, body=body)


def event_body(event_type: str, account_id: str, data: dict[str, Any]) -> str:
    """What a webhook delivers and an event stream sends: ``{"type", "timestamp", "data"}``."""
    return json.dumps(
        {
            "type": event_type,
            "timestamp": iso_utc(utcnow()),
            "data": {"account_id": account_id, **to_jsonable_python(data)},
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def enqueue(
    session: Session,
    tenant_id: str,
    account_id: str,
    event_type: str,
    data: dict[str, Any],
    endpoints: Sequence[WebhookEndpoint] | None = None,
    *,
    body: str | None = None,
) -> list[str]:
    """Write one outbox row per matching enabled endpoint, in the caller's transaction.

    The caller commits: an event exists exactly when the change that caused it does. Each
    row's id is the `webhook-id` the receiver sees (the same on every retry). Returns the
    new event ids. ``endpoints`` (the tenant's, from :func:`enabled_endpoints`) saves a
    query per event when one transaction queues many.
    """
    if endpoints is None:
        endpoints = enabled_endpoints(session, tenant_id)
    if body is None:
        body = event_body(event_type, account_id, data)
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
