"""Dependencies shared by the routers: the gateway and the caller's tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mailgate.api.limits import Limits
from mailgate.api.problems import ProblemException
from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import hash_api_key
from mailgate.gateway.tenants import tenant_for_key

_bearer = HTTPBearer(auto_error=False, description="An API key from `mailgate keys create`.")


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
