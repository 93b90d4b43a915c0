"""Dependencies shared by the routers: the gateway and the caller's tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Path, Query, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mailgate.api.limits import Limits
from mailgate.api.problems import ProblemException
from mailgate.gateway import push
from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import hash_api_key
from mailgate.gateway.tenants import tenant_for_key

_bearer = HTTPBearer(auto_error=False, description="An API key from `mailgate keys create`.")


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


async def require_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The tenant id of the API key in ``Authorization: Bearer``; 401 otherwise."""
    if credentials is None:
        raise ProblemException(
            401, "unauthorized", "Send `Authorization: Bearer <api key>`.", _CHALLENGE
        )
    tenant_id = await _tenant_of_key(request.app.state.gateway, credentials.credentials)
    if tenant_id is None:
        raise ProblemException(401, "unauthorized", "The API key is not valid.", _CHALLENGE)
    return tenant_id


async def _tenant_of_key(gateway: Gateway, key: str) -> str | None:
    digest = hash_api_key(key)  # the cache holds digests, never keys
    tenant_id = gateway.key_cache.get(digest)
    if tenant_id is None:
        tenant_id = await anyio.to_thread.run_sync(tenant_for_key, gateway.engine, key)
        if tenant_id is not None:
            gateway.key_cache.put(digest, tenant_id)
    return tenant_id


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
    credential = credentials.credentials if credentials is not None else access_token
    if credential is None:
        raise ProblemException(
            401,
            "unauthorized",
            "Send `Authorization: Bearer <api key>`, or `access_token=<events token>`.",
            _CHALLENGE,
        )
    if push.is_token(credential):
        grant = push.grant_for_token(gateway, credential)
        if grant is None:
            raise ProblemException(
                401, "unauthorized", "The events token is not valid or has expired.", _CHALLENGE
            )
        return grant
    tenant_id = await _tenant_of_key(gateway, credential) if credentials is not None else None
    if tenant_id is None:
        raise ProblemException(401, "unauthorized", "The API key is not valid.", _CHALLENGE)
    return push.Grant(tenant_id)


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
