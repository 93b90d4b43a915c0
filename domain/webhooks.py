"""Request and response models for /v1/webhooks."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field
from typing_extensions import TypeAliasType

from mailgate.domain import examples as ex
from mailgate.domain.base import ResponseModel, StrictModel
from mailgate.domain.examples import examples

_EventType = Literal[
    "message.created",
    "message.updated",
    "message.deleted",
    "message.sent",
    "message.failed",
    "folder.created",
    "folder.updated",
    "folder.deleted",
    "account.error",
]
EventType = TypeAliasType("EventType", _EventType)  # one named enum in the OpenAPI document
EVENT_TYPES: tuple[str, ...] = get_args(_EventType)
# What a subscription may also name: every event of a kind, or every event.
EventPattern = TypeAliasType("EventPattern", Literal[_EventType, "message.*", "folder.*", "*"])

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_url_shape(value: str) -> str:
    """http(s), a host, no credentials, no whitespace. Where the host points is checked by
    the service (`gateway.webhooks.check_webhook_url`), which needs DNS."""
    if _CONTROL.search(value) or " " in value:
        raise ValueError("must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (user:password@); use the signature")
    if not parts.hostname:
        raise ValueError("must name a host")
    return value


def check_secret(value: str) -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 24 to 64 random bytes."""
    if not value.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with `{SECRET_PREFIX}`")
    body = value[len(SECRET_PREFIX) :]
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be `{SECRET_PREFIX}` followed by base64") from None
    if not SECRET_MIN_BYTES <= len(raw) <= SECRET_MAX_BYTES:
        raise ValueError(
            f"must encode {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes, not {len(raw)}"
        )
    return value


def _unique(values: list[str] | None) -> list[str] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("must not repeat a value")
    return values


def _no_control_chars(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


WebhookUrl = Annotated[
    str,
    Field(min_length=1, max_length=2000, examples=["https://example.com/hooks/mail"]),
    AfterValidator(check_url_shape),
]


def _expand(patterns: list[str] | None) -> list[str] | None:
    """``message.*``, ``folder.*`` and ``*`` become the event types they stand for (stored and
    shown that way); repeats are dropped, the order kept."""
    if patterns is None:
        return None
    expanded = [
        event
        for pattern in patterns
        for event in EVENT_TYPES
        if pattern in ("*", event) or (pattern.endswith(".*") and event.startswith(pattern[:-1]))
    ]
    return list(dict.fromkeys(expanded))


EventList = Annotated[
    list[EventPattern],
    Field(
        min_length=1,
        max_length=len(EVENT_TYPES) + 3,
        description="Event types; `message.*`, `folder.*` or `*` subscribe to a whole kind or "
        "to everything (the answer lists the types they stand for).",
    ),
    AfterValidator(_unique),
    AfterValidator(_expand),
]
AccountIds = Annotated[
    list[Annotated[str, Field(max_length=40)]] | None,
    Field(max_length=1000),
    AfterValidator(_unique),
]
Secret = Annotated[
    str,
    Field(max_length=200, examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]),
    AfterValidator(check_secret),
]
Description = Annotated[str | None, Field(max_length=500), AfterValidator(_no_control_chars)]

_URL_DOC = (
    "Where events are POSTed: http or https, no credentials. Loopback, private, link-local "
    "and other non-public addresses are refused unless the server allows private webhooks."
)
_ACCOUNTS_DOC = "Only events of these accounts; null: every account of the tenant."
_SIGNING_DOC = (
    "Signing secret, `whsec_` + base64 of 24 to 64 bytes (Standard Webhooks); "
    "generated when omitted."
)


class WebhookCreate(StrictModel):
    model_config = examples(ex.WEBHOOK_CREATE)

    url: WebhookUrl = Field(description=_URL_DOC)
    events: EventList = Field(description="The event types to deliver.")
    account_ids: AccountIds = Field(None, description=_ACCOUNTS_DOC)
    secret: Secret | None = Field(None, description=_SIGNING_DOC)
    description: Description = Field(None, description="A note for humans.")


class WebhookUpdate(StrictModel):
    """Only the given fields change; `account_ids: null` means every account."""

    url: WebhookUrl | None = Field(None, description=_URL_DOC)
    events: EventList | None = Field(None, description="The event types to deliver.")
    account_ids: AccountIds = Field(None, description=_ACCOUNTS_DOC)
    secret: Secret | None = Field(None, description="A new signing secret (rotation).")
    description: Description = Field(None, description="A note for humans.")
    enabled: bool | None = Field(
        None,
        description="`true` re-enables an endpoint that was disabled after repeated failures "
        "(its pending events are delivered then); `false` pauses delivery.",
    )


class WebhookOut(ResponseModel):
    model_config = examples(ex.WEBHOOK_OUT)

    id: str = Field(description="Opaque webhook endpoint id.")
    url: str
    events: list[EventType]
    account_ids: list[str] | None = Field(description=_ACCOUNTS_DOC)
    description: str | None
    enabled: bool = Field(description="False: events are kept, not delivered.")
    disabled_reason: str | None = Field(description="Why and when delivery was disabled.")
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    """The new endpoint, with its secret: shown here and at `GET .../secret` only."""

    model_config = examples(ex.WEBHOOK_CREATED)

    secret: str = Field(description="The signing secret for `webhook-signature`.")


class WebhookSecret(ResponseModel):
    secret: str = Field(description="The signing secret for `webhook-signature`.")


class WebhookList(ResponseModel):
    items: list[WebhookOut]


class DeliveryOut(ResponseModel):
    id: str
    event_id: str = Field(description="The event's id, also its `webhook-id` header.")
    event_type: str
    attempt: int = Field(description="1 for the first attempt of this event.")
    succeeded: bool
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(description="Why the attempt failed without an HTTP answer.")
    response_body: str | None = Field(description="The start (2 KB) of the receiver's answer.")
    duration_ms: float
    attempted_at: datetime


class DeliveryList(ResponseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page.")
