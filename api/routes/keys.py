"""/v1/keys: API keys with scopes, made and revoked by an `admin` key (thin over
gateway.keys; `mailgate keys create` makes a tenant's first)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from mailgate.api.deps import GatewayDep, TenantId
from mailgate.api.schemas.common import BODY_ERRORS, problem_responses
from mailgate.domain.keys import SCOPES_DOC, KeyCreate, KeyCreated, KeyList, KeyOut
from mailgate.gateway import keys

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=problem_responses(401, 422))
KeyId = Annotated[str, Path(description="Opaque key id (`key_…`).")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
    summary="Make an API key",
    description="Answers the new key in `key`, once: only its hash is kept. "
    + SCOPES_DOC
    + " A key bound to `account_ids` answers `404` for any other account. An unknown "
    "account, an `expires_at` in the past, or `admin` with `account_ids` is "
    "`validation-error` (422).",
    responses=BODY_ERRORS,
)
def create_key(body: KeyCreate, gw: GatewayDep, tenant_id: TenantId) -> KeyCreated:
    return keys.create_key(gw, tenant_id, body)


@router.get("", response_model=KeyList, summary="List the tenant's API keys")
def list_keys(gw: GatewayDep, tenant_id: TenantId) -> KeyList:
    return KeyList(items=keys.list_keys(gw, tenant_id))


@router.get(
    "/{key_id}",
    response_model=KeyOut,
    summary="Read one API key (never the key itself)",
    responses=problem_responses(404),
)
def get_key(key_id: KeyId, gw: GatewayDep, tenant_id: TenantId) -> KeyOut:
    return keys.get_key(gw, tenant_id, key_id)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete (revoke) an API key",
    description="The key stops working at once on this server, and on every server within "
    "`MAILGATE_API_KEY_CACHE_SECONDS` (10 by default); so do the events tokens made with it. "
    "A key may delete itself.",
    responses=problem_responses(404),
)
def delete_key(key_id: KeyId, gw: GatewayDep, tenant_id: TenantId) -> Response:
    keys.delete_key(gw, tenant_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
