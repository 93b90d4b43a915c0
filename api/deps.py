"""Dependencies shared by the routers: the gateway and the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ProblemException
from gateway.context import Gateway
from gateway.tenants import tenant_for_key

_bearer = HTTPBearer(auto_error=False, description="An API key from `mailgate keys create`.")


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def require_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The tenant id of the API key in ``Authorization: Bearer``; 401 otherwise."""
    challenge = {"WWW-Authenticate": 'Bearer realm="mailgate"'}
    if credentials is None:
        raise ProblemException(
            401, "unauthorized", "Send `Authorization: Bearer <api key>`.", challenge
        )
    tenant_id = tenant_for_key(get_gateway(request).engine, credentials.credentials)
    if tenant_id is None:
        raise ProblemException(401, "unauthorized", "The API key is not valid.", challenge)
    return tenant_id


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
TenantId = Annotated[str, Depends(require_tenant)]
AccountId = Annotated[str, Path(description="Opaque account id, as returned on creation.")]
