"""/v1/events, /v1/accounts/{account_id}/events: webhooks' events as Server-Sent Events, for
browsers; /v1/events/tokens: the short-lived tokens an `EventSource` opens them with."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, status

from mailgate.api.deps import AccountId, GatewayDep, Key, StreamGrant, TenantId
from mailgate.api.schemas.common import BODY_ERRORS, problem_responses
from mailgate.api.sse import MEDIA_TYPE, EventStreamResponse, frames
from mailgate.domain.push import EventToken, EventTokenCreate
from mailgate.gateway import push
from mailgate.gateway.context import Gateway

router = APIRouter(tags=["events"], responses=problem_responses(401, 422))

_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "id", "data"],
    "properties": {
        "event": {
            "type": "string",
            "description": "A webhook event type (`message.created`, ...), or `ready`, `resync`.",
        },
        "id": {"type": "string", "description": "Where to resume: send it as Last-Event-ID."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "object",
                "required": ["type", "timestamp", "data"],
                "properties": {
                    "type": {"type": "string"},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "data": {"type": "object"},
                },
            },
            "description": "The webhook's body, as JSON.",
        },
        "retry": {"type": "integer", "description": "Milliseconds to wait before reconnecting."},
    },
}
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An event stream (`text/event-stream`) until the client goes away. "
        "Each event: `id` (where to resume), `event` (its type: a webhook event type, or "
        '`ready` and `resync`, below) and `data` (JSON: `{"type", "timestamp", "data"}`, '
        "a webhook's body). Comment lines every `MAILGATE_EVENTS_HEARTBEAT_INTERVAL` seconds "
        "keep proxies from closing it.",
        # one event of the stream (as OpenAPI 3.2's itemSchema for text/event-stream)
        "content": {MEDIA_TYPE: {"schema": _EVENT}},
    },
    **problem_responses(404),
}
_RESUMING = (
    " Without `Last-Event-ID` the stream starts now with a `ready` event carrying the id to "
    "resume from. With one (the header a browser sends when it reconnects, or the "
    "`last_event_id` parameter) it sends exactly the events after it; an id it did not give, "
    "or of a state never reached, answers a `resync` event (its id: now) and goes on from "
    "now: list again, as after `cannot-calculate-changes`. Open it with the API key in "
    "`Authorization`, or with a token from `POST /v1/events/tokens` in `access_token`."
)
LastEventHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=8192,
        description="The id of the last event received (sent by `EventSource` on reconnect).",
    ),
]
LastEventQuery = Annotated[
    str | None,
    Query(max_length=8192, description="As `Last-Event-ID`, for clients that cannot send it."),
]
Duration = Annotated[
    float | None,
    Query(
        ge=0,
        le=86400,
        description="End the stream after this many seconds (0: what is waiting, then end). "
        "Default: never.",
    ),
]


@router.post(
    "/v1/events/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=EventToken,
    summary="Make a short-lived token that opens event streams",
    description="For a browser's `EventSource`, which cannot send the API key in a header "
    "(and an API key must not go into a URL): `new EventSource(url + "
    "'?access_token=' + token)`. The token opens the tenant's streams, or only the stream of "
    "`account_id` when given, until it expires (`ttl_seconds`, at most an hour) or its key is "
    "deleted; a stream opened before stays open. It opens only what its key may see (the "
    "`read` scope, the key's accounts). An unknown `account_id` is `not-found` (404).",
    responses={**problem_responses(404), **BODY_ERRORS},
)
def create_event_token(
    body: EventTokenCreate, gw: GatewayDep, key: Key, _tenant_id: TenantId
) -> EventToken:
    return push.issue_token(gw, key, body)


@router.get(
    "/v1/accounts/{account_id}/events",
    response_class=EventStreamResponse,
    status_code=status.HTTP_200_OK,
    summary="Stream an account's events (Server-Sent Events)",
    description="The events webhooks carry for this account, as they happen; each event's "
    "id is the change-feed state after it (`s42`, as `/changes` answers)." + _RESUMING,
    responses=_STREAM,
)
async def stream_account_events(
    request: Request,
    account_id: AccountId,
    gw: GatewayDep,
    grant: StreamGrant,
    last_event_id: LastEventQuery = None,
    last_event_header: LastEventHeader = None,
    duration: Duration = None,
) -> EventStreamResponse:
    last = last_event_header or last_event_id
    return await _respond(request, gw, grant, account_id, last, duration)


@router.get(
    "/v1/events",
    response_class=EventStreamResponse,
    status_code=status.HTTP_200_OK,
    summary="Stream every account's events (Server-Sent Events)",
    description="The events webhooks carry for every account of the tenant (of one account, "
    "for a token bound to it). An event's id holds each account's change-feed state, "
    "`t:acc_a:42,acc_b:7` (accounts without changes left out); treat it as opaque." + _RESUMING,
    responses=_STREAM,
)
async def stream_events(
    request: Request,
    gw: GatewayDep,
    grant: StreamGrant,
    last_event_id: LastEventQuery = None,
    last_event_header: LastEventHeader = None,
    duration: Duration = None,
) -> EventStreamResponse:
    last = last_event_header or last_event_id
    return await _respond(request, gw, grant, None, last, duration)


async def _respond(
    request: Request,
    gw: Gateway,
    grant: push.Grant,
    account_id: str | None,
    last: str | None,
    duration: float | None,
) -> EventStreamResponse:
    stream = await anyio.to_thread.run_sync(push.open_stream, gw, grant, account_id, last)
    settings = gw.settings
    key_id, access = grant.key_id, request.app.state.access
    return EventStreamResponse(
        frames(
            gw,
            stream,
            heartbeat=settings.events_heartbeat_interval,
            poll=settings.events_poll_interval,
            duration=duration,
            live=None if key_id is None else lambda: access.key_id_is_live(key_id),
            check_every=max(settings.api_key_cache_seconds, 1.0),
        )
    )
