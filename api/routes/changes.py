"""/v1/accounts/{account_id}/changes: delta sync for clients that keep a copy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mailgate.api.deps import AccountId, GatewayDep, TenantId
from mailgate.api.schemas.common import problem_responses
from mailgate.domain.changes import Changes
from mailgate.gateway import feed

router = APIRouter(
    prefix="/v1/accounts/{account_id}/changes",
    tags=["changes"],
    responses=problem_responses(401, 404, 422),
)


@router.get(
    "",
    response_model=Changes,
    summary="What changed since a state (delta sync)",
    description="Without `since`: the current state alone. An unknown state answers 410 "
    "`cannot-calculate-changes`: list the account again and keep the state from then.",
    responses=problem_responses(410),
)
def get_changes(
    account_id: AccountId,
    gw: GatewayDep,
    tenant_id: TenantId,
    since: Annotated[str | None, Query(max_length=20, description="A state from before.")] = None,
) -> Changes:
    return feed.get_changes(gw, tenant_id, account_id, since)
