"""An account's connection state: updated when a background sync succeeds or fails, with an
``account.error`` webhook when an account goes from working to failing (not on every retry)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from mailgate.domain.errors import (
    MailboxAuthFailed,
    MailboxError,
    MailboxTimeout,
    MailboxTLSError,
    MailboxUnreachable,
)
from mailgate.store.db import session_scope
from mailgate.store.models import Account, utcnow
from mailgate.store.outbox import publish


def state_for(error: MailboxError) -> str:
    if isinstance(error, MailboxAuthFailed):
        return "auth_failed"
    if isinstance(error, MailboxUnreachable | MailboxTimeout | MailboxTLSError):
        return "unreachable"
    return "error"


def mark_failed(engine: Engine, account_id: str, error: MailboxError) -> bool:
    """Record the failure; True when this is news (an account.error event was queued)."""
    state = state_for(error)
    with session_scope(engine) as session:
        account = session.get(Account, account_id)
        if account is None:
            return False
        news = account.state != state
        account.state, account.state_detail = state, error.detail[:500]
        account.updated_at = utcnow()
        session.add(account)
        if news:
            data = {"state": state, "error": error.detail[:500]}
            publish(session, account.tenant_id, account_id, "account.error", data)
        return news


def mark_working(engine: Engine, account_id: str) -> None:
    with session_scope(engine) as session:
        account = session.get(Account, account_id)
        if account is not None and account.state != "connected":
            account.state, account.state_detail = "connected", None
            account.updated_at = utcnow()
            session.add(account)
