"""Dependencies shared by the routers: the gateway and the caller's tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mailgate.api.limits import Limits
from mailgate.api.problems import ProblemException
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


async def require_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The tenant id of the API key in ``Authorization: Bearer``; 401 otherwise."""
    challenge = {"WWW-Authenticate": 'Bearer realm="mailgate"'}
    if credentials is None:
        raise ProblemException(
            401, "unauthorized", "Send `Authorization: Bearer <api key>`.", challenge
        )
    gateway: Gateway = request.app.state.gateway
    key = credentials.credentials
    digest = hash_api_key(key)  # the cache holds digests, never keys
    tenant_id = gateway.key_cache.get(digest)
    if tenant_id is None:
        tenant_id = await anyio.to_thread.run_sync(tenant_for_key, gateway.engine, key)
        if tenant_id is not None:
            gateway.key_cache.put(digest, tenant_id)
    if tenant_id is None:
        raise ProblemException(401, "unauthorized", "The API key is not valid.", challenge)
    return tenant_id


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
