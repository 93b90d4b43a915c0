"""The send worker: claims due submissions, delivers them over SMTP, records the outcome.

Claiming is the webhook dispatcher's: a conditional UPDATE sets a lease (``claimed_until``),
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of ``mailgate serve`` processes
share the queue and no submission is sent by two at once.

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
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from mailgate.adapters.sending import SmtpRefused, close_quietly, open_smtp, send
from mailgate.domain.changes import Event, payload
from mailgate.domain.errors import MailboxAuthFailed, MailboxError, MailgateError
from mailgate.domain.mail import MessageChange
from mailgate.gateway.backoff import backoff
from mailgate.gateway.changes import AccountChanges
from mailgate.gateway.context import Gateway
from mailgate.gateway.drafts import remove_sent_draft
from mailgate.store.db import session_scope
from mailgate.store.models import Account, Submission, utcnow
from mailgate.store.outbox import enqueue

log = logging.getLogger("mailgate.sending")


class Sender:
    def __init__(
        self, gateway: Gateway, *, batch: int = 20, max_attempts: int = 10, lease: float = 300.0
    ) -> None:
        self.gateway = gateway
        self.batch, self.max_attempts = batch, max_attempts
        self.lease = timedelta(seconds=lease)

    def send_due(self) -> int:
        """Claim due submissions and try each once, on one SMTP session per account for the
        round (a new one after a failure); returns how many were tried."""
        claimed = self._claim()
        sessions: dict[str, smtplib.SMTP] = {}
        try:
            for submission in claimed:
                try:
                    self._deliver(submission, sessions)
                except Exception:
                    log.exception("sending crashed", extra={"submission_id": submission.id})
        finally:
            for client in sessions.values():
                close_quietly(client)
        return len(claimed)

    def _claim(self) -> list[Submission]:
        now = utcnow()
        claimable = or_(
            col(Submission.claimed_until).is_(None), col(Submission.claimed_until) < now
        )
        due = (
            select(Submission.id)
            .where(
                col(Submission.status).in_(("queued", "sending")),
                col(Submission.next_attempt_at) <= now,
                claimable,
            )
            .order_by(col(Submission.next_attempt_at), col(Submission.id))
            .limit(self.batch)
        )
        if self.gateway.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=Submission)
        claim = (
            update(Submission)
            .where(col(Submission.id).in_(due), claimable)
            .values(claimed_until=now + self.lease, status="sending")
            .returning(col(Submission.id))
        )
        with self.gateway.engine.begin() as connection:
            ids = list(connection.execute(claim).scalars())
        if not ids:
            return []
        with Session(self.gateway.engine) as session:
            rows = session.exec(select(Submission).where(col(Submission.id).in_(ids))).all()
            for row in rows:
                session.expunge(row)
            return sorted(rows, key=lambda row: (row.next_attempt_at, row.id))

    def _deliver(self, submission: Submission, sessions: dict[str, smtplib.SMTP]) -> None:
        started = time.monotonic()
        with Session(self.gateway.engine) as session:
            account = session.get(Account, submission.account_id)
        if account is None:
            return  # deleted with its submissions
        if submission.final_dot_at is not None:  # handed over before a crash: never again
            self._finish(
                submission,
                "sent",
                None,
                "the gateway stopped after handing the message over; taken as sent, not "
                "sent again (the server may have dropped it with the connection)",
                account=account,
            )
            return
        try:
            client = sessions.get(account.id)
            if client is None:
                client = sessions[account.id] = open_smtp(
                    self.gateway.mailboxes.smtp_endpoint(account)
                )
            accepted = send(
                client,
                submission.sender,
                json.loads(submission.recipients),
                submission.raw,
                lambda: self._mark_final_dot(submission.id),
            )
        except SmtpRefused as exc:
            if exc.temporary:  # a 421 ends the session too: the next message opens another
                close_quietly(sessions.pop(account.id))
                self._retry(submission, exc.code, exc.words, started)
            else:
                self._finish(submission, "failed", exc.code, exc.words, started)
            return
        except MailboxAuthFailed as exc:  # fix the credentials, then send again
            self._finish(submission, "failed", None, f"SMTP login refused: {exc.detail}", started)
            return
        except (MailboxError, MailgateError) as exc:
            self._retry(submission, None, exc.detail, started)
            return
        except (smtplib.SMTPException, OSError) as exc:  # the session broke mid-message
            broken = sessions.pop(account.id, None)
            if broken is not None:
                close_quietly(broken)
            self._retry(submission, None, f"the SMTP session broke: {exc}", started)
            return
        refused = "; ".join(f"{r}: {c} {w}" for r, (c, w) in accepted.refused.items())
        words = accepted.words + (f" (refused: {refused})" if refused else "")
        self._finish(submission, "sent", accepted.code, words, started, account=account)

    def _mark_final_dot(self, submission_id: str) -> None:
        with self.gateway.engine.begin() as connection:
            connection.execute(
                update(Submission)
                .where(col(Submission.id) == submission_id)
                .values(final_dot_at=utcnow())
            )

    def _retry(self, submission: Submission, code: int | None, words: str, started: float) -> None:
        attempt = submission.attempts + 1
        if attempt >= self.max_attempts:
            self._finish(submission, "failed", code, f"gave up after {attempt} tries: {words}")
            return
        values: dict[str, Any] = {
            "status": "queued",
            "attempts": attempt,
            "claimed_until": None,
            "next_attempt_at": utcnow() + timedelta(seconds=backoff(attempt, cap=1800.0)),
            "smtp_code": code,
            "smtp_response": words[:1000],
            "updated_at": utcnow(),
        }
        with self.gateway.engine.begin() as connection:
            connection.execute(
                update(Submission).where(col(Submission.id) == submission.id).values(**values)
            )
        self._log(submission, "retry", code, words, started)

    def _finish(
        self,
        submission: Submission,
        status: str,
        code: int | None,
        words: str,
        started: float | None = None,
        *,
        account: Account | None = None,
    ) -> None:
        """``sent`` or ``failed``, with its event in the same transaction; then, for a sent
        message of ``account``, the Sent copy, its original marked and its draft gone."""
        event_type = "message.sent" if status == "sent" else "message.failed"
        data = {
            "submission_id": submission.id,
            "message_id": submission.message_id,
            "recipients": json.loads(submission.recipients),
            "smtp_code": code,
            "smtp_response": words[:1000],
        }
        with session_scope(self.gateway.engine) as session:
            row = session.get(Submission, submission.id)
            if row is None:
                return
            row.status, row.smtp_code, row.smtp_response = status, code, words[:1000]
            row.attempts, row.claimed_until, row.updated_at = row.attempts + 1, None, utcnow()
            session.add(row)
            enqueue(session, row.tenant_id, row.account_id, event_type, data)
        if status == "sent" and account is not None:
            self._save_copy(submission, account)
            self._mark_original(submission, account)
            self._drop_draft(submission, account)
        self._log(submission, status, code, words, started)

    def _save_copy(self, submission: Submission, account: Account) -> None:
        """The copy in the Sent folder, as the gateway's own change (``message.created``);
        a failure is logged, the message is sent all the same."""
        if not account.smtp_save_sent_copy:
            return
        try:
            adapter = self.gateway.mailboxes.adapter(account)
            copy = adapter.append_message(submission.raw, "sent", seen=True, draft=False)
        except MailgateError as exc:
            log.warning(
                "sent copy not saved",
                extra={
                    "account_id": account.id,
                    "submission_id": submission.id,
                    "error": exc.detail,
                },
            )
            return
        AccountChanges(self.gateway.engine, account.id).record(
            Event("message", copy.id, "created", payload(copy))
        )
        with session_scope(self.gateway.engine) as session:
            row = session.get(Submission, submission.id)
            if row is not None:
                row.sent_copy_id = copy.id
                session.add(row)

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
            where = {"account_id": account.id, "submission_id": submission.id}
            log.warning("original not marked", extra={**where, "error": exc.detail})
            return
        AccountChanges(self.gateway.engine, account.id).record(
            Event("message", now.id, "updated", payload(now))
        )

    def _drop_draft(self, submission: Submission, account: Account) -> None:
        if submission.draft_id is None:
            return
        try:
            remove_sent_draft(self.gateway, account, submission.draft_id)
        except MailgateError as exc:
            where = {"account_id": account.id, "submission_id": submission.id}
            log.warning("sent draft not removed", extra={**where, "error": exc.detail})

    def _log(
        self,
        submission: Submission,
        outcome: str,
        code: int | None,
        words: str,
        started: float | None,
    ) -> None:
        log.info(
            "smtp submission",
            extra={
                "account_id": submission.account_id,
                "submission_id": submission.id,
                "operation": "smtp.send",
                "outcome": outcome,
                "smtp_code": code,
                "smtp_response": words[:300],
                **(
                    {"duration_ms": round((time.monotonic() - started) * 1000, 1)}
                    if started is not None
                    else {}
                ),
            },
        )

    async def run_forever(self, interval: float = 1.0) -> None:
        """Send in a thread (never on the event loop); when idle, look again after
        ``interval``."""
        while True:
            try:
                tried = await asyncio.to_thread(self.send_due)
            except Exception:
                log.exception("send round failed")
                tried = 0
            if tried == 0:
                await asyncio.sleep(interval)
