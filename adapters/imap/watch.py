"""Changes made on the IMAP server by anyone: new mail and flag changes, found by polling
STATUS (RFC 3501 section 6.3.10) with UIDNEXT, and HIGHESTMODSEQ where the server has
CONDSTORE (RFC 7162). Progress per folder is kept in the store; a folder seen for the first
time (or reset: UIDVALIDITY changed) is recorded without announcing its mail as new."""

from __future__ import annotations

from imapclient import IMAPClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from sqlmodel import select as sql_select

from adapters.base import AliasStore
from adapters.imap import folders
from adapters.imap.messages import fetch_summaries, select, uidvalidity
from adapters.models import MessageSummary
from store.db import session_scope
from store.models import ImapFolderState
from store.outbox import Event, emit, payload


def poll(client: IMAPClient, aliases: AliasStore, engine: Engine, account_id: str) -> list[Event]:
    """One round over every selectable folder; emits and returns what changed."""
    condstore = client.has_capability("CONDSTORE")
    items = [b"UIDNEXT", b"UIDVALIDITY"] + ([b"HIGHESTMODSEQ"] if condstore else [])
    with Session(engine) as session:
        known = {
            row.folder_path: row
            for row in session.exec(
                sql_select(ImapFolderState).where(ImapFolderState.account_id == account_id)
            )
        }
    events: list[Event] = []
    states: list[ImapFolderState] = []
    for entry in folders.list_raw(client):
        if not entry.selectable:
            continue
        status = client.folder_status(entry.path, items)
        state = ImapFolderState(
            account_id=account_id,
            folder_path=entry.path,
            uidvalidity=int(status[b"UIDVALIDITY"]),
            uidnext=int(status[b"UIDNEXT"]),
            highestmodseq=int(status[b"HIGHESTMODSEQ"]) if condstore else None,
        )
        before = known.get(entry.path)
        if before is not None and before.uidvalidity == state.uidvalidity:
            events += _changes(client, aliases, entry.path, before, state)
        if before is None or _moved(before, state):
            states.append(state)
    if states or events:
        with session_scope(engine) as session:
            for state in states:
                session.merge(state)
            emit(session, account_id, events)
    return events


def _moved(before: ImapFolderState, now: ImapFolderState) -> bool:
    return (before.uidvalidity, before.uidnext, before.highestmodseq) != (
        now.uidvalidity,
        now.uidnext,
        now.highestmodseq,
    )


def _changes(
    client: IMAPClient,
    aliases: AliasStore,
    path: str,
    before: ImapFolderState,
    now: ImapFolderState,
) -> list[Event]:
    new_mail = now.uidnext > before.uidnext
    flags_moved = (
        now.highestmodseq is not None
        and before.highestmodseq is not None
        and now.highestmodseq > before.highestmodseq
    )
    if not new_mail and not flags_moved:
        return []
    selected = select(client, path)
    validity = uidvalidity(selected)
    events: list[Event] = []
    if new_mail:
        uids = [u for u in client.search(["UID", f"{before.uidnext}:*"]) if u >= before.uidnext]
        for summary in _ordered(fetch_summaries(client, aliases, path, validity, uids)):
            events.append(Event("message", summary.id, "created", payload(summary)))
    if flags_moved:
        # SEARCH MODSEQ (RFC 7162 section 3.1.5): messages changed after the last round
        changed = client.search(["MODSEQ", str((before.highestmodseq or 0) + 1)])
        uids = [int(uid) for uid in changed if int(uid) < before.uidnext]
        for summary in _ordered(fetch_summaries(client, aliases, path, validity, uids)):
            events.append(Event("message", summary.id, "updated", payload(summary)))
    return events


def _ordered(summaries: dict[int, MessageSummary]) -> list[MessageSummary]:
    return [summaries[uid] for uid in sorted(summaries)]
