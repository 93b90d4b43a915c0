"""Drafts: messages being written, kept in the Drafts folder with ``\\Draft`` (IMAP APPEND;
the POP3 store), listed like any message; a draft is replaced by a new one (its id changes:
a message's content cannot change in place) and goes once it is sent."""

from __future__ import annotations

from sqlmodel import Session

from mailgate.adapters.sending import for_sending
from mailgate.domain.changes import Event, payload
from mailgate.domain.errors import InvalidRequest, NotFound
from mailgate.domain.mail import Message, MessageSummary
from mailgate.domain.sending import DraftRequest, SubmissionOut
from mailgate.gateway.accounts import load_account
from mailgate.gateway.changes import AccountChanges
from mailgate.gateway.context import Gateway
from mailgate.gateway.sending import build, submit_stored
from mailgate.store.db import session_scope
from mailgate.store.models import Account, DraftOrigin


def create_draft(
    gw: Gateway, tenant_id: str, account_id: str, spec: DraftRequest
) -> MessageSummary:
    account = _account(gw, tenant_id, account_id)
    composed = build(gw, account, spec, draft=True)
    raw = composed.as_bytes()
    draft = gw.mailboxes.adapter(account).append_message(raw, "drafts", seen=True, draft=True)
    AccountChanges(gw.engine, account.id).record(
        Event("message", draft.id, "created", payload(draft))
    )
    if spec.reply_to_message_id or spec.forward_message_id:
        with session_scope(gw.engine) as session:
            session.merge(
                DraftOrigin(
                    account_id=account.id,
                    message_id=composed.message_id.strip("<>"),
                    answers_id=spec.reply_to_message_id,
                    forwards_id=spec.forward_message_id,
                )
            )
    return draft


def replace_draft(
    gw: Gateway, tenant_id: str, account_id: str, draft_id: str, spec: DraftRequest
) -> MessageSummary:
    account = _account(gw, tenant_id, account_id)
    old = _check_draft(gw, account, draft_id)
    draft = create_draft(gw, tenant_id, account_id, spec)
    _remove(gw, account, draft_id, old.message_id)
    return draft


def delete_draft(gw: Gateway, tenant_id: str, account_id: str, draft_id: str) -> None:
    account = _account(gw, tenant_id, account_id)
    _remove(gw, account, draft_id, _check_draft(gw, account, draft_id).message_id)


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
    with Session(gw.engine) as session:
        origin = session.get(DraftOrigin, (account.id, composed.message_id.strip("<>")))
    return submit_stored(
        gw,
        account,
        composed,
        idempotency_key,
        draft_id,
        answers_id=origin.answers_id if origin else None,
        forwards_id=origin.forwards_id if origin else None,
    )


def remove_sent_draft(gw: Gateway, account: Account, draft_id: str, message_id: str) -> None:
    """After its message is sent (the send worker)."""
    _remove(gw, account, draft_id, message_id.strip("<>"))


def _account(gw: Gateway, tenant_id: str, account_id: str) -> Account:
    with Session(gw.engine) as session:
        return load_account(session, tenant_id, account_id)


def _check_draft(gw: Gateway, account: Account, draft_id: str) -> Message:
    message = gw.mailboxes.adapter(account).get_message(draft_id)
    if not message.flags.draft:
        raise NotFound("draft")
    return message


def _remove(gw: Gateway, account: Account, draft_id: str, message_id: str | None) -> None:
    """The draft, and what it was answering or forwarding (by its Message-ID)."""
    [result] = gw.mailboxes.adapter(account).batch([draft_id], None, None, True, True)
    if result.status == 200:
        AccountChanges(gw.engine, account.id).record(Event("message", draft_id, "destroyed"))
    if message_id:
        with session_scope(gw.engine) as session:
            origin = session.get(DraftOrigin, (account.id, message_id))
            if origin is not None:
                session.delete(origin)
