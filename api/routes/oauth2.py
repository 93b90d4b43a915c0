"""/v1/oauth2: OAuth2 apps, the hosted sign-in and its callback; thin over gateway.oauth2."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import RedirectResponse

from mailgate.api.deps import GatewayDep, TenantId
from mailgate.api.schemas.common import BODY_ERRORS, problem_responses
from mailgate.domain.oauth2 import (
    AuthorizeAnswer,
    AuthorizeRequest,
    OAuthAppCreate,
    OAuthAppList,
    OAuthAppOut,
    OAuthAppUpdate,
)
from mailgate.gateway.oauth2 import apps, signin

router = APIRouter(prefix="/v1/oauth2", tags=["oauth2"])
AppId = Annotated[str, Path(description="Opaque OAuth2 app id.")]
_AUTHED = problem_responses(401, 422)


@router.post(
    "/apps",
    status_code=status.HTTP_201_CREATED,
    response_model=OAuthAppOut,
    summary="Register an OAuth2 app (Google, Microsoft or another provider)",
    description="`google` and `microsoft` fill in the endpoints, the mail scopes and the mail "
    "servers. Provider URLs on private networks are a `validation-error` (422) unless the "
    "server allows private mailbox hosts.",
    responses={**_AUTHED, **BODY_ERRORS},
)
def create_app(body: OAuthAppCreate, gw: GatewayDep, tenant_id: TenantId) -> OAuthAppOut:
    return apps.create_app(gw, tenant_id, body)


@router.get(
    "/apps", response_model=OAuthAppList, summary="List the tenant's OAuth2 apps", responses=_AUTHED
)
def list_apps(gw: GatewayDep, tenant_id: TenantId) -> OAuthAppList:
    return OAuthAppList(items=apps.list_apps(gw, tenant_id))


@router.get(
    "/apps/{app_id}",
    response_model=OAuthAppOut,
    summary="Read one OAuth2 app (never its client secret)",
    responses={**_AUTHED, **problem_responses(404)},
)
def get_app(app_id: AppId, gw: GatewayDep, tenant_id: TenantId) -> OAuthAppOut:
    return apps.get_app(gw, tenant_id, app_id)


@router.patch(
    "/apps/{app_id}",
    response_model=OAuthAppOut,
    summary="Change an OAuth2 app",
    responses={**_AUTHED, **BODY_ERRORS, **problem_responses(404)},
)
def update_app(
    app_id: AppId, body: OAuthAppUpdate, gw: GatewayDep, tenant_id: TenantId
) -> OAuthAppOut:
    return apps.update_app(gw, tenant_id, app_id, body)


@router.delete(
    "/apps/{app_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an OAuth2 app",
    description="Refused with `in-use` (409) while accounts sign in with it.",
    responses={**_AUTHED, **problem_responses(404, 409)},
)
def delete_app(app_id: AppId, gw: GatewayDep, tenant_id: TenantId) -> Response:
    apps.delete_app(gw, tenant_id, app_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/apps/{app_id}/authorize",
    response_model=AuthorizeAnswer,
    summary="Start a hosted sign-in: the provider URL to send the user's browser to",
    description="Authorization code with PKCE S256 and a single-use `state` that expires in 10 "
    "minutes. After the provider, the browser comes back to `/v1/oauth2/callback`, which "
    "adds the account (after a login with the token) and sends the browser to `return_to` "
    "with `account_id`, or with `error` (a problem type) and `error_description`.",
    responses={**_AUTHED, **BODY_ERRORS, **problem_responses(404)},
)
def authorize(
    app_id: AppId, body: AuthorizeRequest, gw: GatewayDep, tenant_id: TenantId
) -> AuthorizeAnswer:
    return signin.authorize(gw, tenant_id, app_id, body)


@router.get(
    "/callback",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    summary="Where the provider sends the browser back (no API key: the state is the proof)",
    description="Redirects (303) to the sign-in's `return_to`. An unknown, used or expired "
    "`state` answers `oauth2-state-invalid` (400) instead: there is nowhere safe to send the "
    "browser.",
    responses={
        303: {"description": "To `return_to`, with `account_id` or `error`."},
        **problem_responses(400, 422),
    },
    openapi_extra={"security": []},  # the browser comes back without an API key
)
def callback(
    gw: GatewayDep,
    state: Annotated[str | None, Query(max_length=200)] = None,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=1000)] = None,
) -> RedirectResponse:
    target = signin.callback(gw, state, code, error, error_description)
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
