"""Who may come in: an API key's grant, its rate limit, and clients that keep sending bad keys.

Every process counts in the database (``rate_counter``, fixed windows of a minute), so a
key's limit holds however many processes serve it; far from the limit, a process writes its
count in batches (``gateway.tally``). A key seen lately is trusted from a cache for
``MAILGATE_API_KEY_CACHE_SECONDS``: then, between two writes, a request is let in without the
database, on the event loop (:meth:`Access.admit_cached`).

A client address whose bad keys pass ``MAILGATE_BAD_KEYS_PER_MINUTE`` is refused with 429
for the rest of the minute, whatever key it sends then (a key this process has checked
lately still passes, so one leaked key from a shared address does not lock its users out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import col

from mailgate.domain.keys import KeyGrant
from mailgate.gateway.cache import TtlCache
from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import hash_api_key
from mailgate.gateway.keys import grant_for_key, grant_for_key_id
from mailgate.gateway.tally import Tallies
from mailgate.store.db import autocommit
from mailgate.store.models import ApiKey
from mailgate.store.rate_limits import count_request, forget_before, requests_in_window

WINDOW_SECONDS = 60
_TOUCH_EVERY = 60.0  # seconds between writes of a key's last_used_at, per process
_FORGET_EVERY = 600.0  # seconds between clean-ups of old counters, per process


@dataclass(frozen=True)
class Quota:
    """Where a subject stands in the current window."""

    limit: int
    used: int  # this request included
    reset: int  # seconds until the window ends

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit


class Refusal(Enum):
    UNKNOWN_KEY = "unknown-key"
    EXPIRED_KEY = "expired-key"
    CLIENT_BLOCKED = "client-blocked"  # too many bad keys from this address
    RATE_LIMITED = "rate-limited"


@dataclass(frozen=True)
class Admission:
    grant: KeyGrant | None
    quota: Quota | None = None  # the key's; the client's when it is blocked
    refusal: Refusal | None = None


class Access:
    """Checks credentials and counts requests; blocking (run it in a worker thread)."""

    def __init__(self, gw: Gateway) -> None:
        self.engine = gw.engine
        self.settings = gw.settings
        self.cache: TtlCache[KeyGrant] = gw.key_cache
        self._touched: dict[str, float] = {}
        self._forgotten = 0.0
        self._lock = threading.Lock()
        self._tallies = Tallies()

    def admit_cached(self, key: str) -> Admission | None:
        """:meth:`admit_key` for a key in the cache whose request need not be written (see
        ``gateway.tally``); None when the database must be asked. Never blocks: the event
        loop calls it."""
        grant = self.cache.get(hash_api_key(key))
        if grant is None:
            return None
        now = time.time()
        if grant.expired(datetime.fromtimestamp(now, UTC)):
            return Admission(None, refusal=Refusal.EXPIRED_KEY)
        with self._lock:
            if self._housekeeping_due(grant.key_id, now):
                return None
        limit = grant.rate_limit_per_minute or self.settings.rate_limit_per_minute
        if not limit:
            return Admission(grant)
        used = self._tallies.count_here(f"key:{grant.key_id}", _window(now), limit, now)
        if used is None:
            return None
        quota = Quota(limit, used, _reset(now))
        return Admission(grant, quota, Refusal.RATE_LIMITED if quota.exceeded else None)

    def admit_key(self, key: str, client: str | None) -> Admission:
        """An API key from ``Authorization: Bearer``, sent from address ``client``."""
        digest = hash_api_key(key)  # the cache holds digests, never keys
        grant = self.cache.get(digest)
        now = time.time()
        window = _window(now)
        bad_subject = f"bad:{client}" if client and self.settings.bad_keys_per_minute else None
        with autocommit(self.engine) as connection:
            if grant is None:
                if bad_subject is not None:
                    used = requests_in_window(connection, bad_subject, window)
                    if used >= self.settings.bad_keys_per_minute:
                        return self._blocked(used, now)
                grant = self._grant(digest, lambda: grant_for_key(self.engine, key))
                if grant is None:
                    if bad_subject is not None:
                        used = count_request(connection, bad_subject, window)
                        if used > self.settings.bad_keys_per_minute:
                            return self._blocked(used, now)
                    return Admission(None, refusal=Refusal.UNKNOWN_KEY)
            return self._count(connection, grant, now)

    def is_live(self, key: str) -> bool:
        """Whether a key would be let in now (known, not deleted, not expired), without
        counting a request: for answers that replay what the key was already given."""
        grant = self._grant(hash_api_key(key), lambda: grant_for_key(self.engine, key))
        return grant is not None and not grant.expired(datetime.now(UTC))

    def key_id_is_live(self, key_id: str) -> bool:
        """Whether the key with this id still lets its holder in (not deleted, not expired;
        as :meth:`is_live`, within ``api_key_cache_seconds``): an open event stream asks."""
        grant = self._grant(key_id, lambda: grant_for_key_id(self.engine, key_id))
        return grant is not None and not grant.expired(datetime.now(UTC))

    def admit_key_id(self, key_id: str) -> Admission:
        """The key an events token was made with: it must still be live."""
        grant = self._grant(key_id, lambda: grant_for_key_id(self.engine, key_id))
        if grant is None:
            return Admission(None, refusal=Refusal.UNKNOWN_KEY)
        with autocommit(self.engine) as connection:
            return self._count(connection, grant, time.time())

    def _grant(self, cached_as: str, load: Callable[[], KeyGrant | None]) -> KeyGrant | None:
        """The grant cached under ``cached_as`` (a key's digest, or its id), else loaded and
        cached."""
        grant = self.cache.get(cached_as)
        if grant is None:
            grant = load()
            if grant is not None:
                self.cache.put(cached_as, grant)
        return grant

    def _count(self, connection: Connection, grant: KeyGrant, now: float) -> Admission:
        if grant.expired(datetime.fromtimestamp(now, UTC)):
            return Admission(None, refusal=Refusal.EXPIRED_KEY)
        limit = grant.rate_limit_per_minute or self.settings.rate_limit_per_minute
        quota = None
        if limit:
            subject, window = f"key:{grant.key_id}", _window(now)
            used = self._tallies.count_written(
                subject,
                window,
                now,
                lambda amount: count_request(connection, subject, window, amount),
            )
            quota = Quota(limit, used, _reset(now))
        self._housekeep(connection, grant.key_id, now)
        if quota is not None and quota.exceeded:
            return Admission(grant, quota, Refusal.RATE_LIMITED)
        return Admission(grant, quota)

    def _housekeeping_due(self, key_id: str, now: float) -> bool:
        """Whether :meth:`_housekeep` would write now (hold ``_lock``)."""
        return self._touch_due(key_id, now) or self._forget_due(now)

    def _touch_due(self, key_id: str, now: float) -> bool:
        return now - self._touched.get(key_id, 0.0) >= _TOUCH_EVERY

    def _forget_due(self, now: float) -> bool:
        return now - self._forgotten >= _FORGET_EVERY

    def _blocked(self, used: int, now: float) -> Admission:
        quota = Quota(self.settings.bad_keys_per_minute, used, _reset(now))
        return Admission(None, quota, Refusal.CLIENT_BLOCKED)

    def _housekeep(self, connection: Connection, key_id: str, now: float) -> None:
        """Write the key's `last_used_at` (at most once a minute from this process), and now
        and then drop the counters of windows long gone."""
        with self._lock:
            touch = self._touch_due(key_id, now)
            if touch:
                if len(self._touched) > 100_000:
                    self._touched.clear()
                self._touched[key_id] = now
            forget = self._forget_due(now)
            if forget:
                self._forgotten = now
        if touch:
            connection.execute(
                sa.update(ApiKey)
                .where(col(ApiKey.id) == key_id)
                .values(last_used_at=datetime.fromtimestamp(now, UTC))
            )
        if forget:
            forget_before(connection, _window(now) - WINDOW_SECONDS)


def _window(now: float) -> int:
    return int(now) // WINDOW_SECONDS * WINDOW_SECONDS


def _reset(now: float) -> int:
    return _window(now) + WINDOW_SECONDS - int(now)
