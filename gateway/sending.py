"""Sending: an account's SMTP settings, and messages queued for the send worker
(mailgate.events.sender). Tenant-scoped throughout.

``submit`` builds the message, stores it as a ``queued`` submission and answers at once; the
worker delivers it. An ``Idempotency-Key`` names a submission: the same key again answers
the first submission, whatever the body, and nothing is queued twice. (At the HTTP edge,
api.idempotency answers a retry within 24 hours first, and refuses another body under the
key; this holds for good, across the tenant's API keys.)
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from mailgate.adapters.sending import Composed, Original, close_quietly, compose, open_smtp
from mailgate.domain.errors import InvalidRequest, NotFound
from mailgate.domain.ids import is_valid_id, new_id
from mailgate.domain.mail import EmailAddress, Message
from mailgate.domain.sending import (
    ComposeRequest,
    DraftRequest,
    Recipient,
    SmtpSettings,
    SmtpSettingsOut,
    SubmissionOut,
)
from mailgate.gateway.accounts import load_account
from mailgate.gateway.context import Gateway
from mailgate.gateway.uploads import attachment_parts
from mailgate.store.db import autocommit, read_session, session_scope
from mailgate.store.models import Account, Submission, as_utc, utcnow

SUBMISSION_PREFIX = "sub"
# Rung after a submission is stored, so this process's send worker starts at once instead
# of at its next poll (other processes' workers find it by polling).
queued = threading.Event()
_INSERT = insert(Submission.__table__)  # type: ignore[attr-defined]  # SQLModel's table
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def set_smtp(gw: Gateway, tenant_id: str, account_id: str, spec: SmtpSettings) -> SmtpSettingsOut:
    """Log in to the SMTP server with the settings (EHLO, STARTTLS, AUTH) before keeping them."""
    with Session(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
    settings = {
        "smtp_host": spec.host,
        "smtp_port": spec.port or _DEFAULT_PORTS[spec.security],
        "smtp_security": spec.security,
        "smtp_tls_verify": spec.tls_verify,
        "smtp_username": spec.username,
        "smtp_save_sent_copy": spec.save_sent_copy,
        "smtp_password_encrypted": gw.passwords.encrypt(spec.password) if spec.password else None,
    }
    for name, value in settings.items():  # tried on a copy first, kept once they work
        setattr(account, name, value)
    close_quietly(open_smtp(gw.mailboxes.smtp_endpoint(account, spec.password)))
    with session_scope(gw.engine) as session:
        stored = load_account(session, tenant_id, account_id)
        for name, value in settings.items():
            setattr(stored, name, value)
        stored.updated_at = utcnow()
        session.add(stored)
    return smtp_out(account)


def get_smtp(gw: Gateway, tenant_id: str, account_id: str) -> SmtpSettingsOut:
    with Session(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
    if account.smtp_host is None:
        raise NotFound("SMTP settings")
    return smtp_out(account)


def delete_smtp(gw: Gateway, tenant_id: str, account_id: str) -> None:
    with session_scope(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
        account.smtp_host = account.smtp_port = account.smtp_security = None
        account.smtp_username = account.smtp_password_encrypted = None
        session.add(account)


def smtp_out(account: Account) -> SmtpSettingsOut:
    assert account.smtp_host is not None and account.smtp_port is not None
    return SmtpSettingsOut(
        host=account.smtp_host,
        port=account.smtp_port,
        security=account.smtp_security,
        tls_verify=account.smtp_tls_verify,
        username=account.smtp_username or account.username,
        has_own_password=account.smtp_password_encrypted is not None,
        save_sent_copy=account.smtp_save_sent_copy,
    )


def submit(
    gw: Gateway,
    tenant_id: str,
    account_id: str,
    spec: ComposeRequest,
    idempotency_key: str | None,
) -> SubmissionOut:
    with read_session(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
        if idempotency_key is not None:
            earlier = _by_key(session, account_id, idempotency_key)
            if earlier is not None:
                return to_out(earlier)
    if account.smtp_host is None:
        raise InvalidRequest("the account has no SMTP settings; PUT /smtp first")
    composed = build(gw, account, spec)
    submission = _submission(account, composed, idempotency_key)
    submission.answers_id = spec.reply_to_message_id
    submission.forwards_id = spec.forward_message_id
    return _queue(gw, submission)


def submit_stored(
    gw: Gateway,
    account: Account,
    composed: Composed,
    idempotency_key: str | None,
    draft_id: str,
    *,
    answers_id: str | None = None,
    forwards_id: str | None = None,
) -> SubmissionOut:
    """Queue a message that is stored already (a draft): it goes once sent, and the message
    it answers or forwards is marked then."""
    if account.smtp_host is None:
        raise InvalidRequest("the account has no SMTP settings; PUT /smtp first")
    if _sender(account, Recipient(email=composed.sender)).email.lower() != composed.sender.lower():
        raise InvalidRequest(f"this account may not send as {composed.sender}")
    if idempotency_key is not None:
        with Session(gw.engine) as session:
            earlier = _by_key(session, account.id, idempotency_key)
        if earlier is not None:
            return to_out(earlier)
    submission = _submission(account, composed, idempotency_key)
    submission.draft_id = draft_id
    submission.answers_id, submission.forwards_id = answers_id, forwards_id
    return _queue(gw, submission)


def _queue(gw: Gateway, submission: Submission) -> SubmissionOut:
    """Store the submission; the same key at the same moment: the other request's stands."""
    try:
        with autocommit(gw.engine) as connection:  # Core, one statement: one round trip
            connection.execute(_INSERT, submission.model_dump())
    except IntegrityError:
        with Session(gw.engine) as session:
            earlier = _by_key(session, submission.account_id, submission.idempotency_key or "")
        if earlier is None:
            raise
        return to_out(earlier)
    queued.set()
    return to_out(submission)


def build(gw: Gateway, account: Account, spec: DraftRequest, *, draft: bool = False) -> Composed:
    """The message a compose request describes, from the account's own address; a reply
    threads under its original and a forward carries its original."""
    sender = _sender(account, spec.from_)
    attachments = attachment_parts(gw, account, spec.attachments)
    answering = forwarding = None
    if spec.reply_to_message_id is not None:
        answering, spec = _reply(gw, account, spec, sender)
    elif spec.forward_message_id is not None:
        forwarding, spec = _forward(gw, account, spec)
    now = datetime.now(UTC)
    return compose(
        spec,
        sender,
        now,
        answering=answering,
        forwarding=forwarding,
        draft=draft,
        attachments=attachments,
    )


def _submission(account: Account, composed: Composed, idempotency_key: str | None) -> Submission:
    return Submission(
        id=new_id(SUBMISSION_PREFIX),
        tenant_id=account.tenant_id,
        account_id=account.id,
        idempotency_key=idempotency_key,
        message_id=composed.message_id,
        sender=composed.sender,
        recipients=json.dumps(composed.recipients),
        raw=composed.as_bytes(),
    )


def list_submissions(gw: Gateway, tenant_id: str, account_id: str) -> list[SubmissionOut]:
    with Session(gw.engine) as session:
        load_account(session, tenant_id, account_id)
        rows = session.exec(
            select(Submission)
            .where(Submission.account_id == account_id)
            .order_by(col(Submission.created_at).desc(), col(Submission.id))
            .limit(200)
        ).all()
        return [to_out(row) for row in rows]


def get_submission(
    gw: Gateway, tenant_id: str, account_id: str, submission_id: str
) -> SubmissionOut:
    with Session(gw.engine) as session:
        load_account(session, tenant_id, account_id)
        row = (
            session.get(Submission, submission_id)
            if is_valid_id(submission_id, SUBMISSION_PREFIX)
            else None
        )
        if row is None or row.account_id != account_id:
            raise NotFound("submission")
        return to_out(row)


def to_out(row: Submission) -> SubmissionOut:
    return SubmissionOut(
        id=row.id,
        account_id=row.account_id,
        status=row.status,
        message_id=row.message_id,
        recipients=json.loads(row.recipients),
        attempts=row.attempts,
        smtp_code=row.smtp_code,
        smtp_response=row.smtp_response,
        next_attempt_at=as_utc(row.next_attempt_at) if row.status == "queued" else None,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _reply(
    gw: Gateway, account: Account, spec: DraftRequest, sender: Recipient
) -> tuple[Original, DraftRequest]:
    """Thread under the original; ``Re: `` once; without ``to``, answer its Reply-To (else
    its From), and with ``reply_all`` its To and Cc as well, never yourself."""
    original = _original(gw, account, str(spec.reply_to_message_id), "reply_to_message_id")
    changes: dict[str, object] = {"subject": spec.subject or _prefixed("Re", original.subject)}
    if not (spec.to or spec.cc or spec.bcc):
        to = original.reply_to or original.from_
        cc = [*original.to, *original.cc] if spec.reply_all else []
        own = sender.email.lower()
        seen: set[str] = {own}
        changes["to"] = _recipients(to, seen)
        changes["cc"] = _recipients(cc, seen)
        if not changes["to"] and not changes["cc"]:
            raise InvalidRequest(
                "the message answered names no one to reply to; give `to`",
                ("body", "to"),
            )
    thread = Original(original.message_id, list(original.references))
    return thread, spec.model_copy(update=changes)


def _forward(gw: Gateway, account: Account, spec: DraftRequest) -> tuple[Original, DraftRequest]:
    original = _original(gw, account, str(spec.forward_message_id), "forward_message_id")
    _, chunks = gw.mailboxes.adapter(account).stream_raw(str(spec.forward_message_id))
    raw = b"".join(chunks)
    subject = spec.subject or _prefixed("Fwd", original.subject)
    return Original(original.message_id, [], raw), spec.model_copy(update={"subject": subject})


def _original(gw: Gateway, account: Account, message_id: str, field: str) -> Message:
    try:
        return gw.mailboxes.adapter(account).get_message(message_id)
    except NotFound:
        raise InvalidRequest(
            f"`{field}` names no message of this account", ("body", field)
        ) from None


def _prefixed(prefix: str, subject: str | None) -> str:
    """``Re: Hello`` for ``Hello``, and for ``Re: Hello`` or ``RE: Hello`` that very subject."""
    text = " ".join((subject or "").split())
    if text.lower().startswith(f"{prefix.lower()}:"):
        return text
    return f"{prefix}: {text}".rstrip()


def _recipients(addresses: list[EmailAddress], seen: set[str]) -> list[Recipient]:
    chosen = []
    for address in addresses:
        key = address.email.lower()
        if key and key not in seen:
            seen.add(key)
            chosen.append(Recipient(email=address.email, name=address.name))
    return chosen


def _by_key(session: Session, account_id: str, key: str) -> Submission | None:
    return session.exec(
        select(Submission).where(
            Submission.account_id == account_id, Submission.idempotency_key == key
        )
    ).first()


def _sender(account: Account, given: Recipient | None) -> Recipient:
    """The From: one of the addresses the account may send as (``send_as``)."""
    allowed = account.sender_addresses()
    if given is None:
        if not allowed:
            raise InvalidRequest(
                "the account has no address to send as: set its `send_as`", ("body", "from")
            )
        return Recipient(email=allowed[0], name=account.name)
    if given.email.lower() not in {address.lower() for address in allowed}:
        raise InvalidRequest(
            f"this account may not send as {given.email}; add it to the account's `send_as`",
            ("body", "from"),
        )
    return given
