"""Sending: an account's SMTP settings, send, and the submissions; thin over gateway.sending."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response, status

from mailgate.api.deps import AccountId, GatewayDep, TenantId
from mailgate.api.schemas.common import BODY_ERRORS, MAILBOX_ERRORS, problem_responses
from mailgate.domain.mail import MessageSummary
from mailgate.domain.sending import (
    ComposeRequest,
    DraftRequest,
    SmtpSettings,
    SmtpSettingsOut,
    SubmissionList,
    SubmissionOut,
)
from mailgate.gateway import drafts, sending

router = APIRouter(
    prefix="/v1/accounts/{account_id}",
    tags=["sending"],
    responses=problem_responses(401, 404, 422),
)
# Drafts need no SMTP server: their own router, so they can be served without sending
drafts_router = APIRouter(
    prefix="/v1/accounts/{account_id}",
    tags=["drafts"],
    responses=problem_responses(401, 404, 422),
)
SubmissionId = Annotated[str, Path(description="Opaque submission id.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Here the key also names the submission, for good: the same key on "
        "this account later (after 24 hours, or from another of the tenant's API keys) "
        "answers the first submission instead of queueing the message again.",
    ),
]


@router.put(
    "/smtp",
    response_model=SmtpSettingsOut,
    summary="Set where the account sends mail (SMTP submission)",
    description="Logs in first (EHLO, STARTTLS, AUTH) with the mailbox's credentials unless "
    "a `password` is given; an OAuth2 account logs in with its token. The same problem types "
    "as a mailbox login: `mailbox-auth-failed` (422), `mailbox-unreachable`, "
    "`mailbox-tls-failed`, `mailbox-protocol-error` (502), `mailbox-timeout` (504).",
    responses={**MAILBOX_ERRORS, **BODY_ERRORS},
)
def set_smtp(
    account_id: AccountId, body: SmtpSettings, gw: GatewayDep, tenant_id: TenantId
) -> SmtpSettingsOut:
    return sending.set_smtp(gw, tenant_id, account_id, body)


@router.get("/smtp", response_model=SmtpSettingsOut, summary="Read the SMTP settings")
def get_smtp(account_id: AccountId, gw: GatewayDep, tenant_id: TenantId) -> SmtpSettingsOut:
    return sending.get_smtp(gw, tenant_id, account_id)


@router.delete(
    "/smtp",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Stop sending from this account",
)
def delete_smtp(account_id: AccountId, gw: GatewayDep, tenant_id: TenantId) -> Response:
    sending.delete_smtp(gw, tenant_id, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/send",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmissionOut,
    summary="Send a message (queued; answers at once)",
    description="Builds the MIME message (Message-ID, Date, encoded names and subject, "
    "attachments) and queues it; the send worker delivers it over the account's SMTP "
    "server, retries temporary failures and records the server's answer. Bcc recipients "
    "receive it and never appear in its headers. `message.sent` or `message.failed` tells "
    "the outcome; a copy goes to the Sent folder unless the account says the provider keeps "
    "one.",
    responses={**MAILBOX_ERRORS, **BODY_ERRORS},
)
def send(
    account_id: AccountId,
    body: ComposeRequest,
    gw: GatewayDep,
    tenant_id: TenantId,
    idempotency_key: IdempotencyKey = None,
) -> SubmissionOut:
    return sending.submit(gw, tenant_id, account_id, body, idempotency_key)


@router.get(
    "/submissions",
    response_model=SubmissionList,
    summary="The account's submissions, newest first (at most 200)",
)
def list_submissions(account_id: AccountId, gw: GatewayDep, tenant_id: TenantId) -> SubmissionList:
    return SubmissionList(items=sending.list_submissions(gw, tenant_id, account_id))


@router.get(
    "/submissions/{submission_id}",
    response_model=SubmissionOut,
    summary="One submission: queued, sending, sent or failed, with the SMTP answer",
)
def get_submission(
    account_id: AccountId, submission_id: SubmissionId, gw: GatewayDep, tenant_id: TenantId
) -> SubmissionOut:
    return sending.get_submission(gw, tenant_id, account_id, submission_id)


DraftId = Annotated[str, Path(description="The draft's message id.")]


@drafts_router.post(
    "/drafts",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageSummary,
    summary="Save a draft in the Drafts folder",
    description="The compose body, every part optional; kept with `\\Draft` and listed with "
    "the folder's messages.",
    responses={**MAILBOX_ERRORS, **BODY_ERRORS},
)
def create_draft(
    account_id: AccountId, body: DraftRequest, gw: GatewayDep, tenant_id: TenantId
) -> MessageSummary:
    return drafts.create_draft(gw, tenant_id, account_id, body)


@drafts_router.put(
    "/drafts/{draft_id}",
    response_model=MessageSummary,
    summary="Replace a draft (the new one has a new id)",
    responses={**MAILBOX_ERRORS, **BODY_ERRORS},
)
def replace_draft(
    account_id: AccountId,
    draft_id: DraftId,
    body: DraftRequest,
    gw: GatewayDep,
    tenant_id: TenantId,
) -> MessageSummary:
    return drafts.replace_draft(gw, tenant_id, account_id, draft_id, body)


@drafts_router.delete(
    "/drafts/{draft_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a draft for good",
    responses=MAILBOX_ERRORS,
)
def delete_draft(
    account_id: AccountId, draft_id: DraftId, gw: GatewayDep, tenant_id: TenantId
) -> Response:
    drafts.delete_draft(gw, tenant_id, account_id, draft_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/drafts/{draft_id}/send",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmissionOut,
    summary="Send a draft as it is (queued); it leaves the Drafts folder once sent",
    responses={**MAILBOX_ERRORS, **BODY_ERRORS},
)
def send_draft(
    account_id: AccountId,
    draft_id: DraftId,
    gw: GatewayDep,
    tenant_id: TenantId,
    idempotency_key: IdempotencyKey = None,
) -> SubmissionOut:
    return drafts.send_draft(gw, tenant_id, account_id, draft_id, idempotency_key)
