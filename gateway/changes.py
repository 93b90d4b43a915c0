"""The events of an account: every change, whoever found it (the API as it makes one, a
watcher or a POP3 sync as they find one on the server), is recorded here, in the change log
and the webhook outbox, in the transaction of the change itself."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailgate.domain.changes import Event
from mailgate.store.db import session_scope
from mailgate.store.outbox import emit


class AccountChanges:
    """The :class:`~mailgate.domain.changes.ChangeSink` of one account."""

    def __init__(self, engine: Engine, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id

    def __call__(self, session: Session, events: list[Event], *, webhooks: bool = True) -> None:
        emit(session, self.account_id, events, webhooks=webhooks)

    def record(self, *events: Event) -> None:
        """Record changes the API just made, in a transaction of their own."""
        with session_scope(self.engine) as session:
            self(session, list(events))
