"""/v1/accounts/{account_id}/changes: delta sync for clients that keep a copy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from mailgate.api.deps import AccountId, GatewayDep, TenantId
from mailgate.api.problems import ProblemException
from mailgate.api.schemas.common import problem_responses
from mailgate.gateway.accounts import load_account
from mailgate.store.changes import StateTooNew, changes_since, current_state

router = APIRouter(
    prefix="/v1/accounts/{account_id}/changes",
    tags=["changes"],
    responses=problem_responses(401, 404, 422),
)
MAX_CHANGES = 10_000


class KindChanges(BaseModel):
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    destroyed: list[str] = Field(default_factory=list)


class Changes(BaseModel):
    state: str = Field(description="Pass it as `since` next time.")
    created: list[str] = Field(description="Ids of messages and folders made since then.")
    updated: list[str] = Field(description="Ids whose content, flags or folder changed.")
    destroyed: list[str] = Field(description="Ids that are gone.")
    messages: KindChanges = Field(description="The same, messages only.")
    folders: KindChanges = Field(description="The same, folders only.")
    has_more_changes: bool = Field(description="Ask again with the new state for the rest.")


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
    with Session(gw.engine) as session:
        load_account(session, tenant_id, account_id)
    if since is None:
        state = current_state(gw.engine, account_id)
        return Changes(
            state=str(state),
            created=[],
            updated=[],
            destroyed=[],
            messages=KindChanges(),
            folders=KindChanges(),
            has_more_changes=False,
        )
    if not since.isdigit():
        raise ProblemException(410, "cannot-calculate-changes", "Unknown state; resync.")
    try:
        delta = changes_since(gw.engine, account_id, int(since), MAX_CHANGES)
    except StateTooNew:
        raise ProblemException(410, "cannot-calculate-changes", "Unknown state; resync.") from None
    messages = KindChanges(
        created=delta.created["message"],
        updated=delta.updated["message"],
        destroyed=delta.destroyed["message"],
    )
    folders = KindChanges(
        created=delta.created["folder"],
        updated=delta.updated["folder"],
        destroyed=delta.destroyed["folder"],
    )
    return Changes(
        state=str(delta.state),
        created=folders.created + messages.created,
        updated=folders.updated + messages.updated,
        destroyed=folders.destroyed + messages.destroyed,
        messages=messages,
        folders=folders,
        has_more_changes=delta.state < current_state(gw.engine, account_id),
    )
