"""Download a POP3 maildrop into the store (RFC 1939: UIDL, RETR, DELE, QUIT).

Safe to interrupt anywhere: a message is committed to the store before any DELE for it is
sent, DELEs only take effect at QUIT (section 6), and the unique (account, UIDL) key means
a message is never stored twice. One sync per account runs at a time (a lease row); a
second caller skips.

A server that answers "not now" (``-ERR [IN-USE]``: another session holds the maildrop;
``-ERR [SYS/TEMP]``) at login or at any later command ends the session without QUIT (so no
DELE applies) and the whole session is tried again after a short wait, a few times
(respcodes.retrying_when_busy); what was committed before stays, and is not fetched again.

Each command after the login must be answered within the command timeout (one
``CommandDeadlines`` per session; a pipelined RETR counts from the answer before): a server
that stalls or trickles mid-download ends the session as ``MailboxTimeout`` then, and a read
that synced first answers from the store.

Commands: USER/PASS, UIDL (an account needs it), RETR, DELE, QUIT (RFC 1939), and CAPA
(RFC 2449) to see whether RETRs may be pipelined (only when it announces PIPELINING);
never TOP, which is optional.
UIDLs are opaque strings (Dovecot ``%08Xu%08Xv``, Cyrus ``1796053438.1``, Courier
``UID1-1796053196``), compared as they are.
"""

from __future__ import annotations

import contextlib
import logging
import poplib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from mailgate.adapters._net import CommandDeadlines, network_errors
from mailgate.adapters._oplog import logged_operation
from mailgate.adapters.pop3.connect import open_pop3
from mailgate.adapters.pop3.mailstore import MailStore
from mailgate.adapters.pop3.respcodes import busy_error, retrying_when_busy
from mailgate.adapters.pop3.retr import retr_many, supports_pipelining
from mailgate.adapters.pop3.rows import describe, summary
from mailgate.domain.accounts import Pop3Policy
from mailgate.domain.changes import ChangeSink, Event, payload
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import MailboxUnreachable, Unsupported
from mailgate.domain.ids import new_id
from mailgate.store import first_sync, leases
from mailgate.store.db import read_session, session_scope
from mailgate.store.models import Pop3Message, Pop3SyncState, as_utc, utcnow

log = logging.getLogger("mailgate.pop3")
BATCH_MESSAGES = 200
BATCH_BYTES = 20 * 1024 * 1024
PIPELINE_WINDOW = 64


@dataclass
class SyncResult:
    downloaded: int = 0
    deleted_on_server: int = 0
    gone_from_server: int = 0
    skipped: bool = False


@dataclass
class _Run:
    """What the sessions of one run share: the counts, and whether new mail is announced
    (message.created webhooks; not on an account's first sync)."""

    result: SyncResult = field(default_factory=SyncResult)
    announce: bool | None = None


class Pop3Sync:
    def __init__(
        self,
        endpoint: MailboxEndpoint,
        store: MailStore,
        policy: Pop3Policy,
        changes: ChangeSink,
        lease: timedelta = timedelta(seconds=20),
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        self.engine = store.engine
        self.policy = policy
        self.changes = changes
        self.lease = lease
        self.account_id = endpoint.account_id
        self._first_sync_finished = False

    # -- the lease ---------------------------------------------------------------------

    def _acquire(self) -> str | None:
        """This run's lease (its owner id), or None while another run holds it. The id is
        the run's own, not the syncer's: a second run of this adapter must wait too, and
        must not take over the first one's id (its release would then miss the lease)."""
        owner = new_id("sync")
        return owner if leases.acquire(self.engine, self._lease_name, owner, self.lease) else None

    @property
    def _lease_name(self) -> str:
        return f"pop3-sync:{self.account_id}"

    def _release(self, owner: str, error: str | None) -> None:
        first_sync.ensure_state(self.engine, self.account_id)
        with self.engine.begin() as connection:
            values: dict[str, object] = {"last_error": error}
            if error is None:
                values["last_sync_at"] = utcnow()
            connection.execute(
                update(Pop3SyncState)
                .where(col(Pop3SyncState.account_id) == self.account_id)
                .values(**values)
            )
        leases.release(self.engine, self._lease_name, owner)

    def first_sync_finished(self) -> bool:
        """Asked by every list; once finished, a first sync stays finished (``last_sync_at``
        is never cleared, and an account id is never reused), so it is asked of the store
        only until it says so."""
        if self._first_sync_finished:
            return True
        with read_session(self.engine) as session:
            self._first_sync_finished = first_sync.is_finished(session, self.account_id)
        return self._first_sync_finished

    # -- the run -----------------------------------------------------------------------

    def run(self, wait_if_busy: bool = True) -> SyncResult:
        """One sync. ``wait_if_busy``: a locked maildrop is tried again a few times within
        seconds (else once: a read serves the store rather than wait)."""
        owner = self._acquire()
        if owner is None:
            return SyncResult(skipped=True)
        error: str | None = None
        run = _Run()
        try:
            with (
                leases.renewed(self.engine, self._lease_name, owner, self.lease),
                logged_operation(log, self.endpoint, "pop3.sync"),
                network_errors(self.endpoint.host, self.endpoint.port),
            ):
                return retrying_when_busy(
                    lambda: self._session(run), self.account_id, wait=wait_if_busy
                )
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            raise
        finally:
            self._release(owner, error)

    def _session(self, run: _Run) -> SyncResult:
        """One POP3 session of a run (a run may take several, see retrying_when_busy)."""
        result = run.result
        client: poplib.POP3 | None = open_pop3(self.endpoint)
        assert client is not None
        # each command answered within the command timeout, however the server trickles it
        # (a per-read timeout alone let a RETR sent a line a second hold a read for minutes)
        deadline = CommandDeadlines(client.sock, self.endpoint.read_timeout)
        try:
            with deadline("UIDL"):
                on_server = self._uidls(client)
            known = self.store.known_by_uidl()
            if run.announce is None:  # the first session decides, before it stores anything
                # Only once a first sync has finished is new mail news: a first sync cut short
                # (the process killed) stored part of the maildrop, and its resumption must
                # not announce the rest, which was there all along.
                run.announce = self.first_sync_finished()
            announce = run.announce
            if not announce:  # how far the first sync has to go, for the account to show
                first_sync.record_on_server(self.engine, self.account_id, len(on_server))
            inbox = self._inbox()
            fresh = dict(
                sorted((num, uidl) for uidl, num in on_server.items() if uidl not in known)
            )
            with deadline("CAPA"):
                window = PIPELINE_WINDOW if fresh and supports_pipelining(client) else 1
            dele: list[str] = []
            batch: list[dict[str, Any]] = []
            batch_bytes = 0
            for num, raw in retr_many(client, list(fresh), window, deadline):
                batch.append(self.store.downloaded_row(fresh[num], raw, inbox))
                batch_bytes += len(raw)
                if len(batch) >= BATCH_MESSAGES or batch_bytes >= BATCH_BYTES:
                    dele += self._commit(batch, announce)
                    result.downloaded += len(batch)
                    batch, batch_bytes = [], 0
            dele += self._commit(batch, announce)
            result.downloaded += len(batch)
            dele += self._due_on_server(known, on_server)
            result.gone_from_server += self._mark_gone(known, on_server)
            for uidl in dict.fromkeys(dele):
                with deadline("DELE"):
                    client.dele(on_server[uidl])
            with deadline("QUIT"):
                client.quit()  # the server applies the DELEs now (RFC 1939 section 6)
            client = None
            self.store.mark_off_server(dele)
            result.deleted_on_server += len(set(dele))
        except Exception as exc:
            if deadline.expired:  # whatever the cut connection made the command raise
                raise deadline.overdue() from exc
            if not isinstance(exc, poplib.error_proto):
                raise
            if (busy := busy_error(exc)) is not None:
                raise busy from exc
            raise MailboxUnreachable(f"the POP3 server answered an error: {exc}") from exc
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()  # no QUIT: the server forgets any DELE sent
        return result

    def _uidls(self, client: poplib.POP3) -> dict[str, int]:
        try:
            _, lines, _ = client.uidl()
        except poplib.error_proto as exc:
            if (busy := busy_error(exc)) is not None:
                raise busy from exc
            raise Unsupported(
                "this POP3 server does not support UIDL, so messages cannot be tracked"
            ) from exc
        found: dict[str, int] = {}
        for line in lines:
            num, _, uidl = line.decode("utf-8", "replace").strip().partition(" ")
            if num.isdigit() and uidl:
                found.setdefault(uidl.strip(), int(num))
        return found

    def _inbox(self) -> str:
        with session_scope(self.engine) as session:
            return self.store.folders.inbox_id(session)

    def _commit(self, batch: list[dict[str, Any]], announce: bool) -> list[str]:
        """Store the batch in one multi-row INSERT, with its change log entries and (when
        ``announce``) its message.created webhooks; return the UIDLs that may now be
        deleted on the server.

        The first sync of an account does not announce the mail that was already there
        (that is not new mail); later syncs describe each message first, so the webhook
        carries its summary."""
        if not batch:
            return []
        events = []
        for row in batch:
            data: dict[str, object] = {}
            if announce:
                row.update(describe(row["raw"]), described=True)
                stored = Pop3Message.model_construct(**row)
                data = payload(summary(stored))
            events.append(Event("message", str(row["id"]), "created", data))
        with session_scope(self.engine) as session:  # the messages and their events together
            self.store.add_downloaded(session, batch)
            self.changes(session, events, webhooks=announce)
        return [] if self.policy.leave_on_server else [str(row["uidl"]) for row in batch]

    def _due_on_server(self, known: dict[str, Pop3Message], on_server: dict[str, int]) -> list[str]:
        """Known messages the policy wants off the server: all of them (leave_on_server
        off), those downloaded more than delete_after_days ago, or those purged here."""
        due: list[str] = []
        cutoff = None
        if self.policy.delete_after_days is not None:
            cutoff = utcnow() - timedelta(days=self.policy.delete_after_days)
        for uidl, row in known.items():
            if uidl not in on_server:
                continue
            if (
                not self.policy.leave_on_server
                or (cutoff is not None and as_utc(row.received_at) < cutoff)
                or (row.purged and self.policy.purge_on_server)
            ):
                due.append(uidl)
        return due

    def _mark_gone(self, known: dict[str, Pop3Message], on_server: dict[str, int]) -> int:
        """Messages another client removed from the server: kept (default) or purged."""
        gone = [row.id for uidl, row in known.items() if uidl not in on_server and row.on_server]
        if not gone:
            return 0
        with session_scope(self.engine) as session:
            purged = self.store.mark_gone(session, gone, purge=not self.policy.keep_server_deleted)
            # either way the client learns of it: kept ones changed (no longer on the server)
            self.changes(
                session,
                [Event("message", i, "destroyed" if i in purged else "updated") for i in gone],
            )
        return len(gone)
