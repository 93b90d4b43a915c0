"""Drafts: messages being written, kept in the Drafts folder with ``\\Draft`` (IMAP APPEND;
the POP3 store), listed like any message; a draft is replaced by a new one (its id changes:
a message's content cannot change in place) and goes once it is sent."""

from __future__ import annotations

from sqlmodel import Session

from mailgate.adapters.sending import for_sending
from mailgate.domain.changes import Event, payload
from mailgate.domain.errors import InvalidRequest, NotFound
from mailgate.domain.mail import MessageSummary
from mailgate.domain.sending import DraftRequest, SubmissionOut
from mailgate.gateway.accounts import load_account
from mailgate.gateway.changes import AccountChanges
from mailgate.gateway.context import Gateway
from mailgate.gateway.sending import build, submit_stored
from mailgate.store.models import Account


def create_draft(
    gw: Gateway, tenant_id: str, account_id: str, spec: DraftRequest
) -> MessageSummary:
    account = _account(gw, tenant_id, account_id)
    raw = build(gw, account, spec, draft=True).as_bytes()
    draft = gw.mailboxes.adapter(account).append_message(raw, "drafts", seen=True, draft=True)
    AccountChanges(gw.engine, account.id).record(
        Event("message", draft.id, "created", payload(draft))
    )
    return draft


def replace_draft(
    gw: Gateway, tenant_id: str, account_id: str, draft_id: str, spec: DraftRequest
) -> MessageSummary:
    account = _account(gw, tenant_id, account_id)
    _check_draft(gw, account, draft_id)
    draft = create_draft(gw, tenant_id, account_id, spec)
    _remove(gw, account, draft_id)
    return draft


def delete_draft(gw: Gateway, tenant_id: str, account_id: str, draft_id: str) -> None:
    account = _account(gw, tenant_id, account_id)
    _check_draft(gw, account, draft_id)
    _remove(gw, account, draft_id)


def send_draft(
    gw: Gateway, tenant_id: str, account_id: str, draft_id: str, idempotency_key: str | None
) -> SubmissionOut:
    """Queue the draft as it is (Bcc out of its headers); it goes once sent."""
    account = _account(gw, tenant_id, account_id)
    _check_draft(gw, account, draft_id)
    _, chunks = gw.mailboxes.adapter(account).stream_raw(draft_id)
    try:
        composed = for_sending(b"".join(chunks))
    except ValueError as exc:
        raise InvalidRequest(f"the draft cannot be sent: {exc}") from None
    return submit_stored(gw, account, composed, idempotency_key, draft_id)


def remove_sent_draft(gw: Gateway, account: Account, draft_id: str) -> None:
    """After its message is sent (the send worker)."""
    _remove(gw, account, draft_id)


def _account(gw: Gateway, tenant_id: str, account_id: str) -> Account:
    with Session(gw.engine) as session:
        return load_account(session, tenant_id, account_id)


def _check_draft(gw: Gateway, account: Account, draft_id: str) -> None:
    message = gw.mailboxes.adapter(account).get_message(draft_id)
    if not message.flags.draft:
        raise NotFound("draft")


def _remove(gw: Gateway, account: Account, draft_id: str) -> None:
    [result] = gw.mailboxes.adapter(account).batch([draft_id], None, None, True, True)
    if result.status == 200:
        AccountChanges(gw.engine, account.id).record(Event("message", draft_id, "destroyed"))
