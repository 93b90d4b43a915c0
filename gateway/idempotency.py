"""``Idempotency-Key`` records: how long an answer is kept (24 hours), when a claim whose
process died is taken over (10 minutes), and the cleanup of expired rows (on a claim, at
most once a minute per process). A kept answer's body is encrypted at rest (Fernet, the
secret keys of the mailbox passwords): it may hold a webhook's secret or a message's
subject. Blocking database calls: the HTTP edge runs them in a worker thread. The HTTP side
(what a request is, what is replayed) is api.idempotency's."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.engine import Engine

from mailgate.gateway.crypto import PasswordBox, SecretKeyError
from mailgate.store import idempotency as records
from mailgate.store.idempotency import StoredResponse
from mailgate.store.models import utcnow

__all__ = ["Claimed", "Completed", "IdempotencyRecords", "InProgress", "StoredResponse"]

log = logging.getLogger("mailgate.idempotency")

RECORD_LIFETIME = timedelta(hours=24)
# A claim still running after this long belongs to a process that died (no POST takes
# minutes: mail servers have connect and command timeouts of seconds).
STALE_CLAIM = timedelta(minutes=10)
CLEANUP_INTERVAL_S = 60.0
_ATTEMPTS = 5


@dataclass(frozen=True)
class Claimed:
    """This request executes; ``token`` completes or releases the claim."""

    token: str


@dataclass(frozen=True)
class InProgress:
    """Another request with the key is executing now."""


@dataclass(frozen=True)
class Completed:
    """A request with the key was answered: its fingerprint, and what it answered."""

    fingerprint: str
    response: StoredResponse


class IdempotencyRecords:
    """The records of one process (one per app)."""

    def __init__(self, engine: Engine, box: PasswordBox) -> None:
        self.engine = engine
        self.box = box
        self._lock = threading.Lock()
        self._next_cleanup = 0.0

    def claim(self, scope: str, key: str) -> Claimed | InProgress | Completed:
        """Claim the key for a new execution, or say why not. A record older than a day, a
        claim gone stale, or a completed one whose answer is unusable (it no longer decrypts:
        its secret key was retired) is taken over."""
        self._cleanup()
        token = secrets.token_hex(16)
        for _ in range(_ATTEMPTS):
            now = utcnow()
            if records.insert_claim(self.engine, scope, key, token, now):
                return Claimed(token)
            found = records.find(self.engine, scope, key)
            if found is None:
                continue  # released meanwhile: claim again
            age = now - found.created_at
            done = self._completed(found)
            if (
                age >= RECORD_LIFETIME
                or (found.running and age >= STALE_CLAIM)
                or (not found.running and done is None)
            ):
                if records.take_over(self.engine, scope, key, found.claim, token, now):
                    return Claimed(token)
                continue  # someone else changed it first: look again
            return InProgress() if done is None else done
        return InProgress()  # the row keeps changing under us: as good as in progress

    def _completed(self, found: records.Record) -> Completed | None:
        """The answer of a completed record, decrypted; None for a running one, or one whose
        answer is unusable."""
        if found.running or found.response is None or found.fingerprint is None:
            return None
        try:
            body = self.box.unseal(found.response.body)
        except SecretKeyError:
            log.warning("a kept answer does not decrypt with the secret keys; running it again")
            return None
        return Completed(found.fingerprint, replace(found.response, body=body))

    def complete(
        self, scope: str, key: str, token: str, fingerprint: str, response: StoredResponse
    ) -> None:
        sealed = replace(response, body=self.box.seal(response.body))
        if not records.complete(self.engine, scope, key, token, fingerprint, sealed):
            log.warning("an idempotency claim was taken over before its request completed")

    def release(self, scope: str, key: str, token: str) -> None:
        records.release(self.engine, scope, key, token)

    def _cleanup(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next_cleanup:
                return
            self._next_cleanup = now + CLEANUP_INTERVAL_S
        removed = records.delete_older_than(self.engine, utcnow() - RECORD_LIFETIME)
        if removed:
            log.info("removed %d expired idempotency records", removed)
