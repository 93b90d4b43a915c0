"""The webhook dispatcher: claims due outbox rows, POSTs them signed, records every attempt.

Claiming. A row is claimed by setting ``claimed_until`` and ``claimed_by`` (store.claims)
in one conditional UPDATE; on PostgreSQL the candidate rows are picked with ``FOR UPDATE
SKIP LOCKED`` so concurrent dispatchers (several ``mailgate serve`` processes) never wait on
or take the same row, on SQLite the single-writer lock makes the conditional UPDATE enough.
The claim is short (``MAILGATE_CLAIM_TTL``) and renewed by a heartbeat while the round
runs, so a process that dies mid-delivery leaves its rows (and the endpoint's later events,
held back behind them) to the others within that time (at-least-once: the receiver dedupes
by ``webhook-id``). Only the holder sends a row and records its attempt: a row whose claim
lapsed and was taken by another process is neither sent nor recorded here.

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
from mailgate.store.claims import Claim, claimable, renewed
from mailgate.store.db import session_scope
from mailgate.store.models import WebhookDelivery, WebhookEndpoint, WebhookEvent, utcnow

log = logging.getLogger("mailgate.webhooks")

USER_AGENT = "Mailgate-Webhooks/1"
_EVENTS = WebhookEvent.__table__  # type: ignore[attr-defined]  # SQLModel's table
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
        claim_ttl: float | None = None,
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        """``resolver`` looks up webhook hosts (tests name hosts no DNS knows);
        ``claim_ttl`` defaults to ``MAILGATE_CLAIM_TTL``."""
        self.gateway = gateway
        self.resolver = resolver
        self.batch, self.timeout = batch, timeout
        self.max_attempts, self.disable_after = max_attempts, disable_after
        ttl = claim_ttl if claim_ttl is not None else gateway.settings.claim_ttl
        self.claim_ttl = timedelta(seconds=ttl)
        self.http = PinnedHttp(timeout)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhooks")
        self._stopping = threading.Event()
        self._round: Claim | None = None  # the rows the round under way holds

    # --- one round --------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """Claim due events and try each once; returns how many attempts were made."""
        if self._stopping.is_set():
            return 0
        claim, events = self._claim()
        if not events:
            return 0
        by_endpoint: dict[str, list[WebhookEvent]] = {}
        for event in events:
            by_endpoint.setdefault(event.endpoint_id, []).append(event)
        self._round = claim
        try:
            with renewed(claim):
                runs = [(claim, run) for run in by_endpoint.values()]
                return sum(self.pool.map(self._deliver_endpoint, runs))
        finally:
            if self._stopping.is_set():  # closing: whatever is left goes back at once
                claim.release(claim.held())

    def _claim(self) -> tuple[Claim, list[WebhookEvent]]:
        now = utcnow()
        older = aliased(WebhookEvent)
        free = claimable(_EVENTS, now)
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
                free,
                col(WebhookEndpoint.enabled).is_(True),
                ~held_back,
            )
            .order_by(col(WebhookEvent.created_at), col(WebhookEvent.id))
            .limit(self.batch)
        )
        if self.gateway.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=WebhookEvent)
        owner = new_id("own")
        take = (
            update(WebhookEvent)
            .where(col(WebhookEvent.id).in_(due), free)
            .values(claimed_until=now + self.claim_ttl, claimed_by=owner)
            .returning(col(WebhookEvent.id))
        )
        with self.gateway.engine.begin() as connection:
            ids = list(connection.execute(take).scalars())
        claim = Claim(self.gateway.engine, _EVENTS, owner, ids, self.claim_ttl)
        if not ids:
            return claim, []
        with Session(self.gateway.engine) as session:
            return claim, list(
                session.exec(
                    select(WebhookEvent)
                    .where(col(WebhookEvent.id).in_(ids))
                    .order_by(col(WebhookEvent.created_at), col(WebhookEvent.id))
                ).all()
            )

    def _deliver_endpoint(self, run: tuple[Claim, Sequence[WebhookEvent]]) -> int:
        """One endpoint's claimed events in order; after a failure the rest wait."""
        claim, events = run
        attempts = 0
        for index, event in enumerate(events):
            if self._stopping.is_set():  # closing: the rest goes back to the outbox now
                claim.release([e.id for e in events[index:]])
                break
            if not claim.holds(event.id):  # lapsed and taken elsewhere: theirs, in order
                log.warning("webhook claim lost", extra={"event_id": event.id})
                claim.release([e.id for e in events[index:]])
                break
            try:
                succeeded = self._attempt(claim, event)
            except Exception:
                log.exception("webhook delivery crashed", extra={"event_id": event.id})
                claim.let_go([event.id])  # its claim lapses on its own
                succeeded = False
            attempts += 1
            if not succeeded:
                claim.release([e.id for e in events[index + 1 :]])
                break
        return attempts

    # --- one attempt ------------------------------------------------------------------------

    def _attempt(self, claim: Claim, event: WebhookEvent) -> bool:
        """Send one event and record the attempt; False when it did not go through (or the
        claim was lost meanwhile, so this attempt is not this process's to record)."""
        with Session(self.gateway.engine) as session:
            endpoint = session.get(WebhookEndpoint, event.endpoint_id)
        if endpoint is None or not endpoint.enabled:  # deleted or disabled since the claim
            claim.release([event.id])
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
        return self._record(claim, event, outcome) and outcome.succeeded

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

    def _record(self, claim: Claim, event: WebhookEvent, outcome: Outcome) -> bool:
        """The attempt, the event's new state and the endpoint's failure count, together;
        only while this claim holds the event (False, and nothing written, when another
        process took it after the claim lapsed: it sends and records it)."""
        now = utcnow()
        attempt = event.attempts + 1
        changes: dict[str, object] = {
            "attempts": attempt,
            "claimed_until": None,
            "claimed_by": None,
        }
        if outcome.succeeded:
            changes.update(status="delivered", delivered_at=now)
        elif attempt >= self.max_attempts:
            changes.update(status="failed")
        else:
            changes.update(next_attempt_at=now + timedelta(seconds=backoff(attempt)))
        with session_scope(self.gateway.engine) as session:
            taken = session.execute(
                update(WebhookEvent)
                .where(
                    col(WebhookEvent.id) == event.id, col(WebhookEvent.claimed_by) == claim.owner
                )
                .values(**changes)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]  # a DML Result is a CursorResult
                claim.let_go([event.id])
                log.warning(
                    "webhook claim lost; attempt not recorded", extra={"event_id": event.id}
                )
                return False
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
            endpoint = session.get(WebhookEndpoint, event.endpoint_id, with_for_update=True)
            if endpoint is None:
                claim.let_go([event.id])
                return True
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
        claim.let_go([event.id])
        self._observe(event, outcome, now)
        if not outcome.succeeded:
            log.info(
                "webhook delivery failed",
                extra={"event_id": event.id, "attempt": attempt, "error": outcome.error},
            )
        return True

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
        claim = self._round
        left = claim.held() if claim is not None else []
        try:
            if claim is not None:
                claim.release(left)
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
