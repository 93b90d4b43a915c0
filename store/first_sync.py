"""Whether an account that keeps its mail in the store (POP3) has had its first sync: the one
place that says so. A first sync is finished once a sync run ended without error
(``pop3_sync_state.last_sync_at``); until then the store holds only part of the mailbox,
which reads must say (issue 15: a first sync killed at 1,000 of 5,000 messages left reads
answering 1,000 with no sign of the rest)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from mailgate.domain.accounts import SyncProgress
from mailgate.store.db import session_scope
from mailgate.store.models import Pop3Message, Pop3SyncState, as_utc


def ensure_state(engine: Engine, account_id: str) -> None:
    """The account's sync state row, made on first need (two syncs may race to make it)."""
    try:
        with session_scope(engine) as session:
            if session.get(Pop3SyncState, account_id) is None:
                session.add(Pop3SyncState(account_id=account_id))
    except IntegrityError:
        pass  # made a moment ago by another


def record_on_server(engine: Engine, account_id: str, count: int) -> None:
    """How many messages the server listed as a sync session began (its UIDL)."""
    ensure_state(engine, account_id)
    with engine.begin() as connection:
        connection.execute(
            sa.update(Pop3SyncState)
            .where(col(Pop3SyncState.account_id) == account_id)
            .values(messages_on_server=count)
        )


def last_synced(session: Session, account_ids: Collection[str]) -> dict[str, datetime]:
    """When each of ``account_ids`` last finished a sync (those that never did are absent)."""
    if not account_ids:
        return {}
    rows = session.exec(
        select(Pop3SyncState.account_id, Pop3SyncState.last_sync_at).where(
            col(Pop3SyncState.account_id).in_(account_ids),
            col(Pop3SyncState.last_sync_at).is_not(None),
        )
    ).all()
    return {account_id: as_utc(at) for account_id, at in rows if at is not None}


def is_finished(session: Session, account_id: str) -> bool:
    state = session.get(Pop3SyncState, account_id)
    return state is not None and state.last_sync_at is not None


def unfinished(session: Session, account_ids: Collection[str]) -> dict[str, SyncProgress]:
    """Those of ``account_ids`` whose first sync has not finished, with how far it got
    (messages downloaded so far, and the server's count at the last start)."""
    if not account_ids:
        return {}
    states = {
        row.account_id: row
        for row in session.exec(
            select(Pop3SyncState).where(col(Pop3SyncState.account_id).in_(account_ids))
        ).all()
    }
    waiting = [
        account_id
        for account_id in account_ids
        if account_id not in states or states[account_id].last_sync_at is None
    ]
    if not waiting:
        return {}
    stored = dict(
        session.exec(
            select(Pop3Message.account_id, func.count())
            .where(col(Pop3Message.account_id).in_(waiting), col(Pop3Message.uidl).is_not(None))
            .group_by(col(Pop3Message.account_id))
        ).all()
    )
    return {
        account_id: SyncProgress(
            messages_stored=stored.get(account_id, 0),
            messages_on_server=states[account_id].messages_on_server
            if account_id in states
            else None,
        )
        for account_id in waiting
    }
