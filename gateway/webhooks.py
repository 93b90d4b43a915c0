"""Webhook endpoints: tenant-scoped CRUD and the SSRF guard. The outbox writer (`enqueue`)
lives in store.outbox, next to the change log it is written with; it is re-exported here.

Delivery itself is `events.dispatcher`; this module only writes rows, so a change and the
events it causes commit (or roll back) together.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime
from socket import getaddrinfo

from sqlmodel import Session, col, or_, select

from mailgate.domain.addresses import Resolver
from mailgate.domain.errors import InvalidRequest, NotFound
from mailgate.domain.ids import is_valid_id, new_id
from mailgate.domain.webhooks import (
    SECRET_PREFIX,
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookSecret,
    WebhookUpdate,
)
from mailgate.gateway.accounts import unknown_accounts
from mailgate.gateway.context import Gateway
from mailgate.gateway.outbound import HttpTarget, check_url
from mailgate.store.db import session_scope
from mailgate.store.models import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    as_utc,
    utcnow,
)
from mailgate.store.outbox import enqueue, iso_utc

__all__ = ["check_webhook_url", "enqueue"]

WEBHOOK_PREFIX = "whk"


# --- the SSRF guard ---------------------------------------------------------------------


def check_webhook_url(
    url: str, allow_private: bool, *, resolve_now: bool = False, resolver: Resolver = getaddrinfo
) -> HttpTarget:
    """Refuse URLs that would make the gateway call into its own network.

    Called when an endpoint is saved and again before every delivery, whose connection then
    goes to the addresses checked here (``resolve_now``). With ``allow_private``
    (development, tests) addresses are not judged, and a save checks only the URL's shape.
    """
    return check_url(
        url,
        allow_private,
        what="webhook",
        setting="MAILGATE_ALLOW_PRIVATE_WEBHOOKS=true",
        resolve_now=resolve_now,
        resolver=resolver,
    )


# --- endpoints ------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def create_webhook(gw: Gateway, tenant_id: str, spec: WebhookCreate) -> WebhookCreated:
    check_webhook_url(spec.url, gw.settings.allow_private_webhooks)
    secret = spec.secret or new_secret()
    with session_scope(gw.engine) as session:
        _check_accounts(session, tenant_id, spec.account_ids)
        endpoint = WebhookEndpoint(
            id=new_id(WEBHOOK_PREFIX),
            tenant_id=tenant_id,
            url=spec.url,
            events=json.dumps(spec.events),
            account_ids=None if spec.account_ids is None else json.dumps(spec.account_ids),
            secret_encrypted=gw.passwords.encrypt(secret),
            description=spec.description,
        )
        session.add(endpoint)
    return WebhookCreated(**to_out(endpoint).model_dump(), secret=secret)


def list_webhooks(gw: Gateway, tenant_id: str) -> list[WebhookOut]:
    with Session(gw.engine) as session:
        rows = session.exec(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id)
            .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
        ).all()
        return [to_out(row) for row in rows]


def get_webhook(gw: Gateway, tenant_id: str, webhook_id: str) -> WebhookOut:
    with Session(gw.engine) as session:
        return to_out(load_endpoint(session, tenant_id, webhook_id))


def get_secret(gw: Gateway, tenant_id: str, webhook_id: str) -> WebhookSecret:
    with Session(gw.engine) as session:
        endpoint = load_endpoint(session, tenant_id, webhook_id)
        return WebhookSecret(secret=gw.passwords.decrypt(endpoint.secret_encrypted))


def update_webhook(
    gw: Gateway, tenant_id: str, webhook_id: str, changes: WebhookUpdate
) -> WebhookOut:
    given = changes.model_fields_set
    if changes.url is not None:
        check_webhook_url(changes.url, gw.settings.allow_private_webhooks)
    with session_scope(gw.engine) as session:
        endpoint = load_endpoint(session, tenant_id, webhook_id)
        if changes.url is not None:
            endpoint.url = changes.url
        if changes.events is not None:
            endpoint.events = json.dumps(changes.events)
        if "account_ids" in given:
            _check_accounts(session, tenant_id, changes.account_ids)
            ids = changes.account_ids
            endpoint.account_ids = None if ids is None else json.dumps(ids)
        if changes.secret is not None:
            endpoint.secret_encrypted = gw.passwords.encrypt(changes.secret)
        if "description" in given:
            endpoint.description = changes.description
        if changes.enabled is True:
            endpoint.enabled, endpoint.disabled_reason = True, None
            endpoint.consecutive_failures = 0
        elif changes.enabled is False and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason = f"paused through the API at {iso_utc(utcnow())}"
        endpoint.updated_at = utcnow()
        session.add(endpoint)
        session.flush()
        return to_out(endpoint)


def delete_webhook(gw: Gateway, tenant_id: str, webhook_id: str) -> None:
    """Its events and delivery records go with it (ON DELETE CASCADE)."""
    with session_scope(gw.engine) as session:
        session.delete(load_endpoint(session, tenant_id, webhook_id))


def list_deliveries(
    gw: Gateway, tenant_id: str, webhook_id: str, limit: int, cursor: str | None
) -> DeliveryList:
    """Newest first; the cursor is the (attempted_at, id) of the last row shown."""
    with Session(gw.engine) as session:
        endpoint = load_endpoint(session, tenant_id, webhook_id)
        query = (
            select(WebhookDelivery, WebhookEvent.type)
            .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
            .where(WebhookDelivery.endpoint_id == endpoint.id)
        )
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(
                    col(WebhookDelivery.attempted_at) < at,
                    (col(WebhookDelivery.attempted_at) == at) & (col(WebhookDelivery.id) < last_id),
                )
            )
        rows = session.exec(
            query.order_by(
                col(WebhookDelivery.attempted_at).desc(), col(WebhookDelivery.id).desc()
            ).limit(limit + 1)
        ).all()
    page = rows[:limit]
    items = [_delivery_out(row, event_type) for row, event_type in page]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = _encode_cursor(as_utc(last.attempted_at), last.id)
    return DeliveryList(items=items, next_cursor=next_cursor)


def load_endpoint(session: Session, tenant_id: str, webhook_id: str) -> WebhookEndpoint:
    if not is_valid_id(webhook_id, WEBHOOK_PREFIX):
        raise NotFound("webhook")
    endpoint = session.get(WebhookEndpoint, webhook_id)
    if endpoint is None or endpoint.tenant_id != tenant_id:
        raise NotFound("webhook")
    return endpoint


def _check_accounts(session: Session, tenant_id: str, account_ids: list[str] | None) -> None:
    if not account_ids:
        if account_ids is not None:
            raise InvalidRequest("`account_ids` must name at least one account, or be null")
        return
    unknown = unknown_accounts(session, tenant_id, account_ids)
    if unknown:
        raise InvalidRequest(f"no such account: {', '.join(unknown[:5])}")


# --- the outbox -----------------------------------------------------------------------------


# --- shapes ---------------------------------------------------------------------------------


def to_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=json.loads(endpoint.events),
        account_ids=None if endpoint.account_ids is None else json.loads(endpoint.account_ids),
        description=endpoint.description,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        created_at=as_utc(endpoint.created_at),
        updated_at=as_utc(endpoint.updated_at),
    )


def _delivery_out(row: WebhookDelivery, event_type: str) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        event_type=event_type,
        attempt=row.attempt,
        succeeded=row.succeeded,
        status_code=row.status_code,
        error=row.error,
        response_body=row.response_body,
        duration_ms=row.duration_ms,
        attempted_at=as_utc(row.attempted_at),
    )


def _encode_cursor(at: datetime, last_id: str) -> str:
    raw = json.dumps([at.isoformat(), last_id], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, last_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
        if not isinstance(last_id, str) or moment.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError):
        raise InvalidRequest("`cursor` is not a cursor this list gave out") from None
    return moment, last_id
