"""/v1/accounts: thin endpoints over gateway.accounts."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from mailgate.api.deps import AccountId, GatewayDep, Key, TenantId
from mailgate.api.schemas.common import BODY_ERRORS, MAILBOX_ERRORS, problem_responses
from mailgate.domain.accounts import AccountCreate, AccountList, AccountOut, AccountUpdate
from mailgate.domain.oauth2 import AuthorizeAnswer, ReauthorizeRequest
from mailgate.gateway import accounts
from mailgate.gateway.oauth2 import signin

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], responses=problem_responses(401, 422))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountOut,
    summary="Add a mailbox",
    description="Logs in to the mailbox first; only a mailbox that accepts the login is added. "
    "Log in with `password` (or `auth` of type `password`), or with OAuth2 tokens an "
    "integration got itself (`auth` of type `oauth2`: the app's mail server is the default "
    "`host`; an expired or refused access token is refreshed once). "
    "`mailbox-auth-failed` (422) carries the server's words; `mailbox-host-not-allowed` (422) "
    "when the deployment refuses private hosts; `mailbox-unreachable` and "
    "`mailbox-tls-failed` (502), `mailbox-busy` (503), `mailbox-timeout` (504).",
    responses={**MAILBOX_ERRORS, **BODY_ERRORS},
)
def create_account(body: AccountCreate, gw: GatewayDep, tenant_id: TenantId) -> AccountOut:
    return accounts.create_account(gw, tenant_id, body)


@router.get(
    "",
    response_model=AccountList,
    summary="List the tenant's mailboxes",
    description="Every account of the tenant; for a key bound to accounts, those alone.",
)
def list_accounts(gw: GatewayDep, key: Key, tenant_id: TenantId) -> AccountList:
    return AccountList(items=accounts.list_accounts(gw, tenant_id, key.account_ids))


@router.get(
    "/{account_id}",
    response_model=AccountOut,
    summary="Read one mailbox's settings and state",
    responses=problem_responses(404),
)
def get_account(account_id: AccountId, gw: GatewayDep, tenant_id: TenantId) -> AccountOut:
    return accounts.get_account(gw, tenant_id, account_id)


@router.patch(
    "/{account_id}",
    response_model=AccountOut,
    summary="Change a mailbox's settings or credentials",
    description="New connection settings are verified by a login before they are saved. "
    "`watched_folders` must name folders the mailbox has now, else `invalid-folder-id` (422).",
    responses={**MAILBOX_ERRORS, **BODY_ERRORS, **problem_responses(404)},
)
def update_account(
    account_id: AccountId, body: AccountUpdate, gw: GatewayDep, tenant_id: TenantId
) -> AccountOut:
    return accounts.update_account(gw, tenant_id, account_id, body)


@router.delete(
    "/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a mailbox and everything Mailgate keeps for it",
    responses=problem_responses(404),
)
def delete_account(account_id: AccountId, gw: GatewayDep, tenant_id: TenantId) -> Response:
    accounts.delete_account(gw, tenant_id, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{account_id}/reauthorize",
    response_model=AuthorizeAnswer,
    summary="Sign an OAuth2 account in again (its consent was revoked or expired)",
    description="As `POST /v1/oauth2/apps/{id}/authorize`, for this account: it keeps its id, "
    "data and webhooks. The sign-in must reach the same mailbox, else the browser comes back "
    "with `error=oauth2-wrong-mailbox`.",
    responses={**BODY_ERRORS, **problem_responses(404)},
)
def reauthorize(
    account_id: AccountId, body: ReauthorizeRequest, gw: GatewayDep, tenant_id: TenantId
) -> AuthorizeAnswer:
    return signin.reauthorize(gw, tenant_id, account_id, body)
