"""The webhook dispatcher: claims due outbox rows, POSTs them signed, records every attempt.

Claiming. A row is claimed by setting ``claimed_until`` (a lease) in one conditional
UPDATE; on PostgreSQL the candidate rows are picked with ``FOR UPDATE SKIP LOCKED`` so
concurrent dispatchers (several ``mailgate serve`` processes) never wait on or take the
same row, on SQLite the single-writer lock makes the conditional UPDATE enough. Only the
claimer sends a row, so the gateway never sends one event twice while the lease holds; a
process that dies mid-delivery leaves its rows to be claimed again when the lease runs
out (at-least-once: the receiver dedupes by ``webhook-id``).

Order. Per endpoint, events go out oldest first and one at a time: a row is not claimed
while an older row of its endpoint is still pending and either waiting for a retry or
claimed by someone else. A failing endpoint therefore holds its later events back (and is
not hammered once per event) instead of receiving them out of order.

Failures. Every attempt is a ``WebhookDelivery`` row. A non-2xx answer, a timeout or a
connection error schedules a retry with exponential backoff and full jitter; after
``max_attempts`` the event is ``failed``. ``disable_after`` consecutive failures of an
endpoint disable it; its pending events stay and go out once it is re-enabled.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import exists, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, or_, select
from standardwebhooks.webhooks import Webhook

from mailgate.domain.addresses import Resolver
from mailgate.domain.errors import InvalidRequest
from mailgate.domain.ids import new_id
from mailgate.gateway.backoff import backoff
from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import SecretKeyError
from mailgate.gateway.metrics import seconds_since
from mailgate.gateway.outbound import HttpTarget, PinnedHttp
from mailgate.gateway.webhooks import check_webhook_url
from mailgate.store import outbox
from mailgate.store.db import session_scope
from mailgate.store.models import WebhookDelivery, WebhookEndpoint, WebhookEvent, utcnow

log = logging.getLogger("mailgate.webhooks")

USER_AGENT = "Mailgate-Webhooks/1"
BODY_LIMIT = 2048
ERROR_LIMIT = 500


@dataclass
class Outcome:
    succeeded: bool
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None
    duration_ms: float = 0.0
    # the metrics' outcome label: delivered, http_error, timeout, connection_error,
    # refused (the URL guard), secret_error
    kind: str = "delivered"


class Dispatcher:
    """Drains the webhook outbox. ``deliver_due`` does one round; ``run_forever`` loops."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        batch: int = 50,
        timeout: float = 10.0,
        max_attempts: int = 12,
        disable_after: int = 20,
        workers: int = 4,
        lease: float | None = None,
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        """``resolver`` looks up webhook hosts (tests name hosts no DNS knows)."""
        self.gateway = gateway
        self.resolver = resolver
        self.batch, self.timeout = batch, timeout
        self.max_attempts, self.disable_after = max_attempts, disable_after
        # Endpoints are served side by side, each endpoint's events one after another; the
        # lease must outlast the longest such run (every claimed row on one slow endpoint).
        self.lease = timedelta(seconds=lease if lease is not None else batch * timeout + 60)
        self.http = PinnedHttp(timeout)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhooks")
        self._stopping = threading.Event()
        self._held: set[str] = set()  # claimed here, not yet tried or released
        self._held_lock = threading.Lock()

    # --- one round --------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """Claim due events and try each once; returns how many attempts were made."""
        if self._stopping.is_set():
            return 0
        events = self._claim()
        if not events:
            return 0
        by_endpoint: dict[str, list[WebhookEvent]] = {}
        for event in events:
            by_endpoint.setdefault(event.endpoint_id, []).append(event)
        return sum(self.pool.map(self._deliver_endpoint, by_endpoint.values()))

    def _claim(self) -> list[WebhookEvent]:
        now = utcnow()
        older = aliased(WebhookEvent)
        claimable = or_(
            col(WebhookEvent.claimed_until).is_(None), col(WebhookEvent.claimed_until) < now
        )
        held_back = exists().where(
            col(older.endpoint_id) == col(WebhookEvent.endpoint_id),
            col(older.status) == "pending",
            col(older.created_at) < col(WebhookEvent.created_at),
            or_(col(older.next_attempt_at) > now, col(older.claimed_until) >= now),
        )
        due = (
            select(WebhookEvent.id)
            .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookEvent.endpoint_id))
            .where(
                WebhookEvent.status == "pending",
                col(WebhookEvent.next_attempt_at) <= now,
                claimable,
                col(WebhookEndpoint.enabled).is_(True),
                ~held_back,
            )
            .order_by(col(WebhookEvent.created_at), col(WebhookEvent.id))
            .limit(self.batch)
        )
        if self.gateway.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=WebhookEvent)
        claim = (
            update(WebhookEvent)
            .where(
                col(WebhookEvent.id).in_(due),
                claimable,
            )
            .values(claimed_until=now + self.lease)
            .returning(col(WebhookEvent.id))
        )
        with self.gateway.engine.begin() as connection:
            ids = list(connection.execute(claim).scalars())
        if not ids:
            return []
        with self._held_lock:
            self._held.update(ids)
        with Session(self.gateway.engine) as session:
            return list(
                session.exec(
                    select(WebhookEvent)
                    .where(col(WebhookEvent.id).in_(ids))
                    .order_by(col(WebhookEvent.created_at), col(WebhookEvent.id))
                ).all()
            )

    def _deliver_endpoint(self, events: Sequence[WebhookEvent]) -> int:
        """One endpoint's claimed events in order; after a failure the rest wait."""
        attempts = 0
        for index, event in enumerate(events):
            if self._stopping.is_set():  # closing: the rest goes back to the outbox now
                self._release([e.id for e in events[index:]])
                break
            try:
                succeeded = self._attempt(event)
            except Exception:
                log.exception("webhook delivery crashed", extra={"event_id": event.id})
                self._let_go([event.id])  # its claim lapses on its own
                succeeded = False
            attempts += 1
            if not succeeded:
                self._release([e.id for e in events[index + 1 :]])
                break
        return attempts

    def _release(self, ids: list[str]) -> None:
        if ids:
            with self.gateway.engine.begin() as connection:
                connection.execute(
                    update(WebhookEvent)
                    .where(col(WebhookEvent.id).in_(ids))
                    .values(claimed_until=None)
                )
            self._let_go(ids)

    def _let_go(self, ids: list[str]) -> None:
        with self._held_lock:
            self._held.difference_update(ids)

    # --- one attempt ------------------------------------------------------------------------

    def _attempt(self, event: WebhookEvent) -> bool:
        with Session(self.gateway.engine) as session:
            endpoint = session.get(WebhookEndpoint, event.endpoint_id)
        if endpoint is None or not endpoint.enabled:  # deleted or disabled since the claim
            self._release([event.id])
            return False
        try:  # again here: the name may point somewhere else by now (DNS rebinding), and the
            # request goes to the addresses checked now, never to a second lookup
            target = check_webhook_url(
                endpoint.url,
                self.gateway.settings.allow_private_webhooks,
                resolve_now=True,
                resolver=self.resolver,
            )
        except InvalidRequest as exc:
            outcome = Outcome(False, error=f"refused: {exc.detail}", kind="refused")
        else:
            try:
                secret = self.gateway.passwords.decrypt(endpoint.secret_encrypted)
            except SecretKeyError:
                outcome = Outcome(
                    False, error="the signing secret does not decrypt", kind="secret_error"
                )
            else:
                outcome = self._send(target, secret, event)
        self._record(event, outcome)
        return outcome.succeeded

    def _send(self, target: HttpTarget, secret: str, event: WebhookEvent) -> Outcome:
        now = datetime.now(UTC)
        headers = {
            "webhook-id": event.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(event.id, now, event.payload),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        started = time.monotonic()
        try:
            with self.http.stream(
                "POST", target, event.payload.encode("utf-8"), headers
            ) as response:
                body = _read_prefix(response)
                status = response.status_code
        except httpx.TimeoutException as exc:
            return Outcome(
                False,
                error=f"no answer within {self.timeout:g} s ({type(exc).__name__})",
                duration_ms=_ms(started),
                kind="timeout",
            )
        except httpx.HTTPError as exc:
            return Outcome(
                False,
                error=f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT],
                duration_ms=_ms(started),
                kind="connection_error",
            )
        ok = 200 <= status < 300
        return Outcome(
            ok,
            status_code=status,
            error=None if ok else f"the receiver answered HTTP {status}",
            response_body=body,
            duration_ms=_ms(started),
            kind="delivered" if ok else "http_error",
        )

    def _record(self, event: WebhookEvent, outcome: Outcome) -> None:
        """The attempt, the event's new state and the endpoint's failure count, together."""
        now = utcnow()
        attempt = event.attempts + 1
        changes: dict[str, object] = {"attempts": attempt, "claimed_until": None}
        self._let_go([event.id])
        if outcome.succeeded:
            changes.update(status="delivered", delivered_at=now)
        elif attempt >= self.max_attempts:
            changes.update(status="failed")
        else:
            changes.update(next_attempt_at=now + timedelta(seconds=backoff(attempt)))
        with session_scope(self.gateway.engine) as session:
            session.add(
                WebhookDelivery(
                    id=new_id("dlv"),
                    event_id=event.id,
                    endpoint_id=event.endpoint_id,
                    attempt=attempt,
                    succeeded=outcome.succeeded,
                    status_code=outcome.status_code,
                    error=outcome.error[:ERROR_LIMIT] if outcome.error else None,
                    response_body=outcome.response_body,
                    duration_ms=outcome.duration_ms,
                    attempted_at=now,
                )
            )
            session.exec(
                update(WebhookEvent).where(col(WebhookEvent.id) == event.id).values(**changes)
            )
            endpoint = session.get(WebhookEndpoint, event.endpoint_id, with_for_update=True)
            if endpoint is None:
                return
            if outcome.succeeded:
                endpoint.consecutive_failures = 0
            else:
                endpoint.consecutive_failures += 1
                if endpoint.enabled and endpoint.consecutive_failures >= self.disable_after:
                    endpoint.enabled = False
                    endpoint.disabled_reason = (
                        f"disabled at {now.isoformat(timespec='seconds')} after "
                        f"{endpoint.consecutive_failures} consecutive failed deliveries; "
                        f"last: {outcome.error}"
                    )[:500]
                    log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id})
            session.add(endpoint)
        self._observe(event, outcome, now)
        if not outcome.succeeded:
            log.info(
                "webhook delivery failed",
                extra={"event_id": event.id, "attempt": attempt, "error": outcome.error},
            )

    def _observe(self, event: WebhookEvent, outcome: Outcome, now: datetime) -> None:
        metrics = self.gateway.metrics
        metrics.webhook_delivery_duration.labels(outcome.kind).observe(outcome.duration_ms / 1000)
        if outcome.succeeded:
            metrics.webhook_delivery_latency.observe(seconds_since(event.created_at, now))

    # --- lifetime ---------------------------------------------------------------------------

    async def run_forever(self, interval: float = 1.0) -> None:
        """Deliver in a thread (never on the event loop). When idle, wait up to ``interval``
        for this process to queue a webhook (then send it at once), else poll again."""
        while True:
            outbox.queued.clear()
            try:
                attempts = await asyncio.to_thread(self.deliver_due)
            except Exception:
                log.exception("webhook round failed")
                attempts = 0
            if attempts == 0:
                try:
                    await asyncio.to_thread(outbox.queued.wait, interval)
                except asyncio.CancelledError:
                    outbox.queued.set()  # release the waiting thread too
                    raise

    def close(self) -> None:
        """Stop gracefully: attempts under way finish and are recorded (each within the
        delivery timeout); events claimed here and not yet tried go back to the outbox at
        once, for the other processes, instead of waiting out their claim."""
        self._stopping.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        with self._held_lock:
            left = list(self._held)
        try:
            self._release(left)
        except Exception:  # the database is gone too: the claims lapse on their own
            log.warning("could not release claimed webhooks", extra={"events": len(left)})
        self.http.close()


def _read_prefix(response: httpx.Response) -> str | None:
    """The start of the answer as text: at most 2 KB, without NUL (PostgreSQL refuses it)."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass  # the status line counts; a body cut short is only a missing detail
    raw = b"".join(chunks)[:BODY_LIMIT]
    if not raw:
        return None
    return raw.decode("utf-8", "replace").replace("\x00", "")[:BODY_LIMIT]


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
