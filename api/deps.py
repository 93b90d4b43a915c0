"""Dependencies shared by the routers: the gateway and the caller's tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Path, Query, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mailgate.api.document import OPERATION_IDS
from mailgate.api.limits import Limits
from mailgate.api.problems import ProblemException
from mailgate.api.scopes import required_scopes
from mailgate.domain.errors import NotFound
from mailgate.domain.keys import KeyGrant
from mailgate.gateway import push
from mailgate.gateway.access import Access, Admission, Refusal
from mailgate.gateway.context import Gateway

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key, from `mailgate keys create` or `POST /v1/keys`.",
)


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def json_bodies_only(request: Request) -> None:
    """An app-wide dependency: a route that takes a JSON body answers 415
    `unsupported-media-type` to a body of another declared type (a form, plain text) instead
    of a confusing 422. A body without `Content-Type` is read as JSON, as before."""
    route = request.scope.get("route")
    content_type = request.headers.get("content-type")
    takes_json = isinstance(route, APIRoute) and route.body_field is not None
    if takes_json and content_type and not _is_json(content_type):
        raise ProblemException(
            415, "unsupported-media-type", "Send the body as `application/json`."
        )


async def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mailgate"'}


def _unauthorized(detail: str) -> ProblemException:
    return ProblemException(401, "unauthorized", detail, _CHALLENGE)


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> KeyGrant:
    """The grant of the API key in ``Authorization: Bearer``, once it is counted against its
    rate limit, holds a scope the operation needs and may see the account the path names."""
    if credentials is None:
        raise _unauthorized("Send `Authorization: Bearer <api key>`.")
    access: Access = request.app.state.access
    client = request.client.host if request.client else None
    admission = access.admit_cached(credentials.credentials)  # no thread, no database
    if admission is None:
        admission = await anyio.to_thread.run_sync(
            access.admit_key, credentials.credentials, client
        )
    return _authorize(request, admission)


def _authorize(request: Request, admission: Admission) -> KeyGrant:
    quota = admission.quota
    if quota is not None:
        request.state.rate_limit = quota  # api.middleware.RateLimitHeadersMiddleware sends it
    if admission.refusal is Refusal.CLIENT_BLOCKED:
        raise ProblemException(
            429,
            "rate-limited",
            "Too many requests with a wrong API key from this address; wait before trying again.",
            {"Retry-After": str(quota.reset if quota else 60)},
        )
    if admission.refusal is Refusal.EXPIRED_KEY:
        raise _unauthorized("The API key has expired.")
    grant = admission.grant
    if grant is None:
        raise _unauthorized("The API key is not valid.")
    request.state.key_id = grant.key_id
    if admission.refusal is Refusal.RATE_LIMITED:
        raise ProblemException(
            429,
            "rate-limited",
            f"This key may make {quota.limit if quota else 0} requests a minute; wait for "
            "`Retry-After` seconds.",
            {"Retry-After": str(quota.reset if quota else 60)},
        )
    account_id = request.path_params.get("account_id")
    if account_id is not None and not grant.sees(account_id):
        raise NotFound("account")  # as for any account the key may not see
    route = request.scope.get("route")
    needed = required_scopes(
        OPERATION_IDS.get(route.name, "") if isinstance(route, APIRoute) else ""
    )
    if not any(grant.allows(scope) for scope in needed):
        raise ProblemException(
            403,
            "insufficient-scope",
            f"This operation needs an API key with the `{'` or `'.join(needed)}` scope.",
        )
    return grant


async def require_tenant(grant: Annotated[KeyGrant, Depends(require_key)]) -> str:
    """The tenant id of the caller's key (:func:`require_key`)."""
    return grant.tenant_id


async def require_stream_grant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[
        str | None,
        Query(
            max_length=4096,
            description="A token from `POST /v1/events/tokens`, for clients that cannot send "
            "`Authorization` (a browser's `EventSource`). Ignored when the header is sent.",
        ),
    ] = None,
) -> push.Grant:
    """Who opens an event stream: an API key or an events token in ``Authorization: Bearer``,
    else an events token in ``access_token``. Holds no request slot: a stream is open for
    hours, and waits on the event loop."""
    gateway: Gateway = request.app.state.gateway
    access: Access = request.app.state.access
    credential = credentials.credentials if credentials is not None else access_token
    if credential is None:
        raise _unauthorized(
            "Send `Authorization: Bearer <api key>`, or `access_token=<events token>`."
        )
    if push.is_token(credential):
        token = push.open_token(gateway, credential)
        if token is None:
            raise _unauthorized("The events token is not valid or has expired.")
        admission = await anyio.to_thread.run_sync(access.admit_key_id, token.key_id)
        return push.Grant.of(_authorize(request, admission), token.account_id)
    if credentials is None:  # an API key must not travel in a URL
        raise _unauthorized("Send the API key in `Authorization`, not in the query.")
    return push.Grant.of(await require_key(request, credentials))


async def tenant_with_slot(
    request: Request, tenant_id: Annotated[str, Depends(require_tenant)]
) -> AsyncIterator[str]:
    """The caller's tenant, once it holds a slot of its tenant (and of the account the path
    names) for the rest of the request (api.limits)."""
    limits: Limits = request.app.state.limits
    async for _ in limits.hold(tenant_id, request.path_params.get("account_id")):
        yield tenant_id


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
TenantId = Annotated[str, Depends(tenant_with_slot)]
AccountId = Annotated[str, Path(description="Opaque account id, as returned on creation.")]
StreamGrant = Annotated[push.Grant, Depends(require_stream_grant)]
Key = Annotated[KeyGrant, Depends(require_key)]
