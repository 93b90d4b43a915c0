"""The Prometheus metrics of one gateway (``GET /metrics``), in the text format 0.0.4.

One :class:`Metrics` per :class:`~mailgate.gateway.context.Gateway`, each with its own
``CollectorRegistry`` rather than prometheus_client's global default: the default registry
refuses a second metric of the same name, so every test (or embedding) that builds a second
gateway in the same process would either fail or mix its numbers into the first one's. A
process runs one gateway in production, so a registry per gateway loses nothing there.

Labels stay bounded: a route *template* (never the raw path), a method, a status class, a
protocol, an operation name from the code, a mail server host, a problem type or exception
class name, an outcome word. Never an account, message or tenant id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailgate.domain.errors import MailgateError
from mailgate.store.models import WebhookEvent

log = logging.getLogger("mailgate.metrics")

# The classic text format, which every Prometheus scrapes; all names here are plain ASCII,
# so generate_latest's output is exactly that format.
MEDIA_TYPE = "text/plain; version=0.0.4"
CONTENT_TYPE = f"{MEDIA_TYPE}; charset=utf-8"
UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404)

# Mail commands and webhook POSTs take milliseconds to tens of seconds (timeouts at 30 s).
_NETWORK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# A POP3 sync downloads whole messages; a webhook may wait through hours of retries.
_SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


def status_class(status: int) -> str:
    """``2xx``, ``4xx``, ...: the status label (one series per class, not per code)."""
    return f"{status // 100}xx"


def error_label(error: BaseException) -> str:
    """A bounded name for a failure: the problem type of a Mailgate error
    (``mailbox-auth-failed``), else the exception's class name, both fixed by the code."""
    return error.type if isinstance(error, MailgateError) else type(error).__name__


def seconds_since(moment: datetime, now: datetime | None = None) -> float:
    """Seconds from ``moment`` to ``now``; a naive ``moment`` (SQLite keeps no zone) is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(((now or datetime.now(UTC)) - moment).total_seconds(), 0.0)


class _OutboxDepth(Collector):
    """``mailgate_webhook_outbox_depth``, counted in the database at each scrape (the
    outbox is shared by every process, so any process can answer it). The COUNT uses the
    index on ``status``; it runs in the scrape's worker thread, never on the event loop. A
    database that does not answer leaves the metric out of that scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        try:
            with Session(self.engine) as session:
                pending = session.exec(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(col(WebhookEvent.status) == "pending")
                ).one()
        except Exception:
            log.warning("outbox depth not counted: the database did not answer", exc_info=True)
            return
        yield GaugeMetricFamily(
            "mailgate_webhook_outbox_depth",
            "Webhook events waiting in the outbox (pending: due, retrying, or held back "
            "behind an endpoint's older event or a disabled endpoint), all processes.",
            value=pending,
        )

    def describe(self) -> Iterable[Metric]:
        return []  # no query when registered


class Metrics:
    """The gateway's metric objects and its registry. Adapters see only
    :meth:`mailbox_operation` (through ``MailboxEndpoint.observer``); the HTTP middleware,
    the watchers, the poller and the dispatcher use the metric objects directly."""

    def __init__(self, engine: Engine) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        registry.register(_OutboxDepth(engine))
        self.http_request_duration = Histogram(
            "mailgate_http_request_duration_seconds",
            "HTTP requests by method, route template (or 'unmatched') and status class, "
            "from the first byte in to the last byte out (a stream's whole life).",
            ["method", "route", "status"],
            registry=registry,
        )
        self.mailbox_command_duration = Histogram(
            "mailgate_mailbox_command_duration_seconds",
            "Mailbox operations (one adapter call: a login, a listing, a fetch, a sync) by "
            "protocol, operation and mail server host, whatever their outcome.",
            ["protocol", "operation", "server"],
            buckets=_NETWORK_BUCKETS,
            registry=registry,
        )
        self.mailbox_command_errors = Counter(
            "mailgate_mailbox_command_errors",
            "Mailbox operations that failed, by protocol, operation, mail server host and "
            "error (the problem type, e.g. mailbox-auth-failed, or the exception class).",
            ["protocol", "operation", "server", "error"],
            registry=registry,
        )
        self.watched_accounts = Gauge(
            "mailgate_watched_accounts",
            "Accounts this process watches now: a watcher connected to the server and "
            "holding the account's lease.",
            registry=registry,
        )
        self.watch_lag = Histogram(
            "mailgate_watch_lag_seconds",
            "Watch rounds that found changes: seconds from the watcher waking (the server's "
            "IDLE/NOTIFY report, or its poll clock) until the changes are recorded. How long "
            "the server took to report a change is not measurable and not included.",
            buckets=_NETWORK_BUCKETS,
            registry=registry,
        )
        self.webhook_delivery_duration = Histogram(
            "mailgate_webhook_delivery_duration_seconds",
            "Webhook delivery attempts by outcome (delivered, http_error, timeout, "
            "connection_error, refused, secret_error), each attempt's own duration.",
            ["outcome"],
            buckets=_NETWORK_BUCKETS,
            registry=registry,
        )
        self.webhook_delivery_latency = Histogram(
            "mailgate_webhook_delivery_latency_seconds",
            "Webhook events delivered: seconds from the event's creation in the outbox to "
            "its successful delivery, retries included.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.pop3_sync_duration = Histogram(
            "mailgate_pop3_sync_duration_seconds",
            "Background syncs of POP3 accounts (new mail into the store) by outcome: ok, "
            "or the problem type of the failure (mailbox-busy, mailbox-auth-failed, ...).",
            ["outcome"],
            buckets=_SYNC_BUCKETS,
            registry=registry,
        )

    def mailbox_operation(
        self, operation: str, server: str, seconds: float, error: BaseException | None
    ) -> None:
        """One adapter operation (``imap.verify``: its protocol is the name's first part)."""
        protocol = operation.partition(".")[0]
        self.mailbox_command_duration.labels(protocol, operation, server).observe(seconds)
        if error is not None:
            self.mailbox_command_errors.labels(
                protocol, operation, server, error_label(error)
            ).inc()

    def render(self) -> bytes:
        """The text exposition of every metric. Blocks (the outbox COUNT): call it from a
        worker thread."""
        return generate_latest(self.registry)
