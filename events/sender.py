"""The send worker: claims due submissions, delivers them over SMTP, records the outcome.

Claiming is the webhook dispatcher's: a conditional UPDATE sets a short claim
(``claimed_until`` and ``claimed_by``, store.claims), with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so any number of ``mailgate serve`` processes share the queue and no submission
is sent by two at once. A heartbeat renews the round's claim while it sends, so a process
that dies leaves its submissions to the others within ``MAILGATE_CLAIM_TTL``.

Outcomes. 2xx: ``sent``, then the copy in the Sent folder (unless the provider keeps one
itself) and a ``message.sent`` event. 4xx or a connection failure: ``queued`` again with
backoff, up to ``max_attempts``. 5xx: ``failed`` with the server's words and a
``message.failed`` event.

Never twice. ``final_dot_at`` is stored just before the terminating dot goes out. A
submission claimed again with it set (the process died between the dot and recording the
answer) is taken as sent and never sent again: the server either accepted it, or it lost
the message with the connection (RFC 5321 4.1.1.4), and that case is reported in
``smtp_response``. Before the dot, a crash leaves nothing at the server, and the next claim
sends it (at least once up to there, exactly once across the dot).
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from mailgate.adapters.sending import Accepted, SmtpRefused, close_quietly, open_smtp, send
from mailgate.domain.changes import Event, payload
from mailgate.domain.errors import MailboxAuthFailed, MailboxError, MailgateError
from mailgate.domain.ids import new_id
from mailgate.domain.mail import MessageChange
from mailgate.gateway.backoff import backoff
from mailgate.gateway.changes import AccountChanges
from mailgate.gateway.context import Gateway
from mailgate.gateway.drafts import remove_sent_draft
from mailgate.gateway.sending import queued
from mailgate.store.claims import Claim, claimable, renewed
from mailgate.store.db import autocommit, session_scope
from mailgate.store.models import Account, Submission, utcnow
from mailgate.store.outbox import enabled_endpoints, publish_all

log = logging.getLogger("mailgate.sending")

RECORD_EVERY = 25  # outcomes written in one transaction (and at the end of each round)
RECORD_AFTER_S = 0.5  # or once the oldest unwritten one is this old
GATHER_S = 0.05  # after a round that was not full, wait this long for more to go with it


_SUBMISSION = Submission.__table__  # type: ignore[attr-defined]  # SQLModel's table
# Built once: the hot path of the worker runs them for every message
_MARK_FINAL_DOT = (
    update(_SUBMISSION)
    .where(
        _SUBMISSION.c.id == bindparam("sid"),
        _SUBMISSION.c.claimed_by == bindparam("owner"),
        _SUBMISSION.c.final_dot_at.is_(None),
    )
    .values(final_dot_at=bindparam("now"))
)
_RECORD = (
    update(_SUBMISSION)
    .where(_SUBMISSION.c.id == bindparam("sid"), _SUBMISSION.c.claimed_by == bindparam("owner"))
    .values(
        status=bindparam("outcome"),
        attempts=bindparam("tries"),
        claimed_until=None,
        claimed_by=None,
        smtp_code=bindparam("code"),
        smtp_response=bindparam("words"),
        updated_at=bindparam("now"),
        next_attempt_at=func.coalesce(bindparam("due"), _SUBMISSION.c.next_attempt_at),
        sent_copy_id=func.coalesce(bindparam("copy"), _SUBMISSION.c.sent_copy_id),
    )
)


class SmtpSessions:
    """Logged-in SMTP sessions kept from round to round, one per account (and its settings:
    changed settings open a new one); one idle for ``idle_s`` is closed (servers end idle
    sessions themselves: Postfix after 300 s)."""

    def __init__(self, idle_s: float = 30.0) -> None:
        self.idle_s = idle_s
        self._open: dict[str, tuple[tuple[Any, ...], smtplib.SMTP, float]] = {}

    def get(self, account: Account, gateway: Gateway) -> tuple[smtplib.SMTP, bool]:
        """The account's session, and whether it was open already (it may have gone stale)."""
        settings = (
            account.updated_at,
            account.smtp_host,
            account.smtp_port,
            account.smtp_security,
            account.smtp_username,
            account.smtp_password_encrypted,
            account.password_encrypted,
        )
        kept = self._open.get(account.id)
        if kept is not None and kept[0] == settings:
            self._open[account.id] = (settings, kept[1], time.monotonic())
            return kept[1], True
        self.drop(account.id)
        client = open_smtp(gateway.mailboxes.smtp_endpoint(account))
        self._open[account.id] = (settings, client, time.monotonic())
        return client, False

    def drop(self, account_id: str, *, quit_: bool = True) -> None:
        kept = self._open.pop(account_id, None)
        if kept is not None:
            if quit_:
                close_quietly(kept[1])
            else:  # mid-DATA: a QUIT would be taken as content
                kept[1].close()

    def close_idle(self) -> None:
        now = time.monotonic()
        for account_id in [a for a, (_, _, used) in self._open.items() if now - used > self.idle_s]:
            self.drop(account_id)

    def close(self) -> None:
        for account_id in list(self._open):
            self.drop(account_id)


class ClaimLost(Exception):
    """Another process holds the submission now (this one's claim lapsed): not sent here."""


@dataclass
class Outcome:
    submission: Submission
    status: str  # queued (to retry), sent or failed
    code: int | None
    words: str
    started: float | None = None
    next_attempt_at: datetime | None = None
    sent_copy_id: str | None = None


class Sender:
    def __init__(
        self,
        gateway: Gateway,
        *,
        batch: int = 100,
        max_attempts: int = 10,
        claim_ttl: float | None = None,
    ) -> None:
        """``claim_ttl`` defaults to ``MAILGATE_CLAIM_TTL``."""
        self.gateway = gateway
        self.batch, self.max_attempts = batch, max_attempts
        ttl = claim_ttl if claim_ttl is not None else gateway.settings.claim_ttl
        self.claim_ttl = timedelta(seconds=ttl)
        self.sessions = SmtpSessions()
        self._stopping = threading.Event()
        self._busy = threading.Lock()  # held by the round under way

    def close(self, wait: float = 30.0) -> None:
        """Stop gracefully: the message under way is finished and recorded (up to ``wait``
        seconds); those claimed and not yet begun go back to the queue at once, for the
        other processes, instead of waiting out their claim."""
        self._stopping.set()
        if self._busy.acquire(timeout=wait):
            self._busy.release()
        self.sessions.close()

    def send_due(self) -> int:
        """Claim due submissions and try each once, on one SMTP session per account (kept
        for the next rounds; a new one after a failure); returns how many were tried.

        Per message, one write goes to the database before the final dot (on a connection
        kept for the round); the outcomes are written together, every few messages and at
        the end. A crash before they are written leaves ``final_dot_at`` set, so the next
        claim reconciles the message instead of sending it again."""
        with self._busy:
            if self._stopping.is_set():
                return 0
            self.sessions.close_idle()
            claim, claimed = self._claim()
            if not claimed:
                return 0
            with renewed(claim):
                self._send_claimed(claim, claimed)
            return len(claimed)

    def _send_claimed(self, claim: Claim, claimed: list[tuple[Submission, Account | None]]) -> None:
        owner = claim.owner
        pending: list[Outcome] = []
        oldest = 0.0
        try:
            with autocommit(self.gateway.engine) as marks:
                for index, (submission, account) in enumerate(claimed):
                    if self._stopping.is_set():  # closing: the rest goes back to the queue
                        rest = [row.id for row, _ in claimed[index:]]
                        claim.release(rest, status="queued")
                        break
                    if not claim.holds(submission.id):  # lapsed and taken elsewhere
                        continue
                    try:
                        outcome = self._deliver(submission, account, marks, owner)
                    except Exception:
                        log.exception("sending crashed", extra=_where(submission))
                        continue
                    if outcome is None:
                        continue
                    if not pending:
                        oldest = time.monotonic()
                    pending.append(outcome)
                    if len(pending) >= RECORD_EVERY or time.monotonic() - oldest > RECORD_AFTER_S:
                        self._record(claim, pending)
                        pending = []
        finally:
            if pending:
                self._record(claim, pending)

    def _claim(self) -> tuple[Claim, list[tuple[Submission, Account | None]]]:
        """Due submissions, claimed by this round, each with its account."""
        now = utcnow()
        owner = new_id("own")
        free = claimable(_SUBMISSION, now)
        due = (
            select(Submission.id)
            .where(
                col(Submission.status).in_(("queued", "sending")),
                col(Submission.next_attempt_at) <= now,
                free,
            )
            .order_by(col(Submission.next_attempt_at), col(Submission.id))
            .limit(self.batch)
        )
        if self.gateway.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=Submission)
        take = (
            update(Submission)
            .where(col(Submission.id).in_(due), free)
            .values(claimed_until=now + self.claim_ttl, claimed_by=owner, status="sending")
            .returning(col(Submission.id))
        )
        with self.gateway.engine.begin() as connection:
            ids = list(connection.execute(take).scalars())
        claim = Claim(self.gateway.engine, _SUBMISSION, owner, ids, self.claim_ttl)
        if not ids:
            return claim, []
        with Session(self.gateway.engine) as session:
            rows = session.exec(select(Submission).where(col(Submission.id).in_(ids))).all()
            owners = {row.account_id for row in rows}
            accounts = session.exec(select(Account).where(col(Account.id).in_(owners))).all()
            session.expunge_all()
        by_id = {account.id: account for account in accounts}
        rows = sorted(rows, key=lambda row: (row.next_attempt_at, row.id))
        return claim, [(row, by_id.get(row.account_id)) for row in rows]

    def _deliver(
        self,
        submission: Submission,
        account: Account | None,
        marks: Connection,
        owner: str,
    ) -> Outcome | None:
        started = time.monotonic()
        if account is None:
            return None  # deleted with its submissions
        if submission.final_dot_at is not None:  # handed over before a crash: never again
            return self._reconcile(submission, account, started)
        try:
            accepted = self._send(submission, account, marks, owner)
        except ClaimLost:  # the dot never went: the server drops what it was given
            self.sessions.drop(account.id, quit_=False)
            log.warning("submission claimed by another process", extra=_where(submission))
            return None
        except SmtpRefused as exc:
            if exc.temporary:  # a 421 ends the session too: the next message opens another
                self.sessions.drop(account.id)
                return self._retry(submission, exc.code, exc.words, started)
            return Outcome(submission, "failed", exc.code, exc.words, started)
        except MailboxAuthFailed as exc:  # fix the credentials, then send again
            return Outcome(submission, "failed", None, f"SMTP login refused: {exc.detail}", started)
        except (MailboxError, MailgateError) as exc:
            return self._retry(submission, None, exc.detail, started)
        except (smtplib.SMTPException, OSError) as exc:  # the session broke mid-message
            self.sessions.drop(account.id, quit_=False)
            return self._retry(submission, None, f"the SMTP session broke: {exc}", started)
        refused = "; ".join(f"{r}: {c} {w}" for r, (c, w) in accepted.refused.items())
        words = accepted.words + (f" (refused: {refused})" if refused else "")
        copy_id, _ = self._after_sent(submission, account, reconciling=False)
        return Outcome(submission, "sent", accepted.code, words, started, sent_copy_id=copy_id)

    def _send(
        self, submission: Submission, account: Account, marks: Connection, owner: str
    ) -> Accepted:
        """On the account's kept session; one the server has ended meanwhile (closed, or a
        421) is replaced and the message sent on the new one, since nothing of it went out
        yet."""
        marked = False

        def mark() -> None:
            nonlocal marked
            self._mark_final_dot(marks, submission.id, owner)
            marked = True

        recipients = json.loads(submission.recipients)
        client, reused = self.sessions.get(account, self.gateway)
        try:
            return send(client, submission.sender, recipients, submission.raw, mark)
        except (smtplib.SMTPServerDisconnected, ConnectionError, SmtpRefused) as exc:
            stale = not isinstance(exc, SmtpRefused) or exc.code == 421
            if not (reused and stale and not marked):
                raise
            self.sessions.drop(account.id, quit_=False)
        client, _ = self.sessions.get(account, self.gateway)
        return send(client, submission.sender, recipients, submission.raw, mark)

    def _reconcile(self, submission: Submission, account: Account, started: float) -> Outcome:
        """A submission this or another process handed over and then stopped: sent, and what
        follows a send done now, unless it was done then (its copy in Sent, by Message-ID)."""
        copy_id, found = self._after_sent(submission, account, reconciling=True)
        how = (
            "the server accepted it (its copy was in Sent already)"
            if found
            else "taken as sent (the server may have dropped it with the connection)"
        )
        words = f"the gateway stopped after handing the message over; {how}, not sent again"
        return Outcome(submission, "sent", None, words, started, sent_copy_id=copy_id)

    def _mark_final_dot(self, marks: Connection, submission_id: str, owner: str) -> None:
        """Committed before the dot, and only while this round still holds the claim."""
        done = marks.execute(
            _MARK_FINAL_DOT, {"sid": submission_id, "owner": owner, "now": utcnow()}
        )
        if done.rowcount != 1:
            raise ClaimLost(submission_id)

    def _retry(
        self, submission: Submission, code: int | None, words: str, started: float
    ) -> Outcome:
        attempt = submission.attempts + 1
        if attempt >= self.max_attempts:
            return Outcome(
                submission, "failed", code, f"gave up after {attempt} tries: {words}", started
            )
        due = utcnow() + timedelta(seconds=backoff(attempt, cap=1800.0))
        return Outcome(submission, "queued", code, words, started, next_attempt_at=due)

    def _record(self, claim: Claim, outcomes: list[Outcome]) -> None:
        """The outcomes in one transaction, each ``sent`` or ``failed`` with its event; one
        whose claim another process has taken meanwhile is that process's to record."""
        now = utcnow()
        rows = [
            {
                "sid": outcome.submission.id,
                "owner": claim.owner,
                "outcome": outcome.status,
                "tries": outcome.submission.attempts + 1,
                "code": outcome.code,
                "words": outcome.words[:1000],
                "now": now,
                "due": outcome.next_attempt_at,
                "copy": outcome.sent_copy_id,
            }
            for outcome in outcomes
        ]
        with session_scope(self.gateway.engine) as session:
            connection = session.connection()
            if connection.execute(_RECORD, rows).rowcount == len(rows):
                recorded = outcomes
            else:  # one lease at least was lost: which ones were written
                session.rollback()
                connection = session.connection()
                recorded = [
                    outcome
                    for outcome, row in zip(outcomes, rows, strict=True)
                    if connection.execute(_RECORD, row).rowcount == 1
                ]
            # Each account's events take its change numbers together, locking its counter
            # row until the commit: accounts in one order, so two senders cannot deadlock.
            finished = [outcome for outcome in recorded if outcome.status != "queued"]
            endpoints: dict[str, Any] = {}
            for account_id, group in groupby(
                sorted(finished, key=lambda done: done.submission.account_id),
                key=lambda done: done.submission.account_id,
            ):
                done = list(group)
                tenant_id = done[0].submission.tenant_id
                if tenant_id not in endpoints:
                    endpoints[tenant_id] = enabled_endpoints(session, tenant_id)
                publish_all(
                    session,
                    tenant_id,
                    account_id,
                    [(_event_type(outcome), _event_data(outcome)) for outcome in done],
                    endpoints[tenant_id],
                )
        claim.let_go(outcome.submission.id for outcome in outcomes)
        for outcome in outcomes:
            self._log(outcome)

    def _after_sent(
        self, submission: Submission, account: Account, *, reconciling: bool
    ) -> tuple[str | None, bool]:
        """The Sent copy (its id, and whether it was there already), the original marked,
        the draft gone: each step done again after a crash is harmless (the copy is looked
        for first)."""
        copy = self._save_copy(submission, account, reconciling)
        self._mark_original(submission, account)
        self._drop_draft(submission, account)
        return copy

    def _save_copy(
        self, submission: Submission, account: Account, reconciling: bool
    ) -> tuple[str | None, bool]:
        """The copy in the Sent folder, as the gateway's own change (``message.created``);
        when ``reconciling``, the one saved before a crash if it is there. A failure is
        logged; the message is sent all the same."""
        if not account.smtp_save_sent_copy:
            return None, False
        try:
            adapter = self.gateway.mailboxes.adapter(account)
            if reconciling:
                found = adapter.find_by_message_id("sent", submission.message_id)
                if found is not None:
                    return found.id, True
            copy = adapter.append_message(submission.raw, "sent", seen=True, draft=False)
        except MailgateError as exc:
            log.warning("sent copy not saved", extra={**_where(submission), "error": exc.detail})
            return None, False
        AccountChanges(self.gateway.engine, account.id).record(
            Event("message", copy.id, "created", payload(copy))
        )
        return copy.id, False

    def _mark_original(self, submission: Submission, account: Account) -> None:
        """The message a reply answers gets \\Answered, one a forward carries $Forwarded
        (on the server, or in the POP3 store), recorded as a change of the gateway's own."""
        target = submission.answers_id or submission.forwards_id
        if target is None:
            return
        change = (
            MessageChange(answered=True)
            if submission.answers_id
            else MessageChange(keywords_add=["$Forwarded"])
        )
        try:
            now = self.gateway.mailboxes.adapter(account).update_message(target, change)
        except MailgateError as exc:  # gone meanwhile, or the server refused: sent all the same
            log.warning("original not marked", extra={**_where(submission), "error": exc.detail})
            return
        AccountChanges(self.gateway.engine, account.id).record(
            Event("message", now.id, "updated", payload(now))
        )

    def _drop_draft(self, submission: Submission, account: Account) -> None:
        if submission.draft_id is None:
            return
        try:
            remove_sent_draft(self.gateway, account, submission.draft_id, submission.message_id)
        except MailgateError as exc:
            log.warning("sent draft not removed", extra={**_where(submission), "error": exc.detail})

    def _log(self, outcome: Outcome) -> None:
        submission = outcome.submission
        log.info(
            "smtp submission",
            extra={
                **_where(submission),
                "operation": "smtp.send",
                "outcome": "retry" if outcome.status == "queued" else outcome.status,
                "smtp_code": outcome.code,
                "smtp_response": outcome.words[:300],
                **(
                    {"duration_ms": round((time.monotonic() - outcome.started) * 1000, 1)}
                    if outcome.started is not None
                    else {}
                ),
            },
        )

    async def run_forever(self, interval: float = 1.0, gather: float = GATHER_S) -> None:
        """Send in a thread (never on the event loop); when idle, look again after
        ``interval`` or as soon as this process queues a message. A round that found less
        than a batch is followed by ``gather`` seconds of waiting, so messages queued one by
        one go out several to a round (a round costs a claim and a write of its own)."""
        while True:
            queued.clear()
            try:
                tried = await asyncio.to_thread(self.send_due)
            except Exception:
                log.exception("send round failed")
                tried = 0
            if tried >= self.batch:
                continue
            if tried == 0:
                try:  # a submission queued by this process wakes it at once
                    await asyncio.to_thread(queued.wait, interval)
                except asyncio.CancelledError:
                    queued.set()  # release the waiting thread too
                    raise
            await asyncio.sleep(gather)


def _event_type(outcome: Outcome) -> str:
    return "message.sent" if outcome.status == "sent" else "message.failed"


def _event_data(outcome: Outcome) -> dict[str, Any]:
    row = outcome.submission
    return {
        "submission_id": row.id,
        "message_id": row.message_id,
        "recipients": json.loads(row.recipients),
        "smtp_code": outcome.code,
        "smtp_response": outcome.words[:1000],
    }


def _where(submission: Submission) -> dict[str, str]:
    return {"account_id": submission.account_id, "submission_id": submission.id}
