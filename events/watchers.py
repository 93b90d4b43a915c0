"""IMAP watchers of `mailgate serve`. Each watched account keeps a connection of its own and
waits on INBOX with IDLE (new mail there is reported within a second); it runs a watch round
over all watched folders when the server reports a change, or on the clock: every
``imap_poll_interval`` seconds where the server cannot tell of other folders, and every
``SAFETY_ROUND`` seconds as a safety net where it can (NOTIFY, RFC 5465). A broken
connection is reopened with exponential backoff; the account's state and an
``account.error`` webhook say when it cannot be.

No thread waits for an account: a waiting watcher's socket is parked on one selector
(events.parking) and a bounded pool of workers runs the rounds, so a process holds a
thousand idle accounts with a handful of threads.

Across processes: each process announces itself with a lease (``watch-member:``) and
watches the accounts that rank it first among the live processes (rendezvous hashing), so
the accounts spread over the processes and move as few as possible when one comes or goes.
A lease per account (``imap-watch:``) makes sure only one process watches it at a time, so
no change is reported twice. All of a process's leases are renewed together, in one
statement every ``BEAT`` seconds; a process that dies (SIGKILL) lets its accounts go to the
others within ``LEASE`` + ``BEAT`` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta

from sqlmodel import Session

from mailgate.adapters.base import MailAdapter, Waiting, Watch
from mailgate.domain.errors import MailboxError, MailboxTimeout, MailboxUnreachable
from mailgate.events.parking import Parking
from mailgate.gateway.backoff import backoff
from mailgate.gateway.context import Gateway
from mailgate.gateway.health_state import mark_failed, mark_working
from mailgate.gateway.mailboxes import accounts_that, settings_fingerprint
from mailgate.store import leases
from mailgate.store.models import Account
from mailgate.store.outbox import accounts_changed

log = logging.getLogger("mailgate.watch")

LEASE = timedelta(seconds=18)
BEAT = 5.0  # seconds between renewals of a process's leases (and looks at who else runs)
MEMBER = "watch-member:"
SAFETY_ROUND = 60.0  # seconds between rounds where the server tells of every folder
RECONNECT_CAP = 300.0
DEFERRED_RETRY = 0.2
PROBE_EVERY = 1.0  # seconds between looks whether a server that went away is back
# A connection that drops and comes right back (a server restart) is no account error; one
# that cannot be reopened either is.
FAILED_AFTER = 2
# Threads that run watch rounds (made as rounds need them), however many accounts are
# watched: so many servers may stall a round each (until the command deadline) before a
# round of another account waits.
WORKERS = 32


class AccountWatcher:
    """One account's watch, run a step at a time on the parking's workers; between steps it
    is parked (waiting for its server, or for its clock). Steps of one watcher never run at
    once: each step parks or runs the next one as its last act."""

    def __init__(
        self, gw: Gateway, account_id: str, interval: float, owner: str, parking: Parking
    ) -> None:
        self.gw = gw
        self.account_id = account_id
        self.interval = min(interval, SAFETY_ROUND)
        self.owner = owner
        self.lease = f"imap-watch:{account_id}"
        self.parking = parking
        self.waiting = threading.Event()  # set while it waits for the server to report news
        self.done = threading.Event()  # set once it has stopped and let its lease go
        self.stopping = False
        self.lost = False  # its lease went to another process: stop watching, lease again
        self.failures = 0
        self.connections = 0  # how many times it has (re)connected
        self.notify = False  # whether the server reports changes of every folder (NOTIFY)
        self._adapter: MailAdapter | None = None  # for the outage probe
        self._probed = False  # the last reconnect wait ended because the server was back
        self._probing = False
        self._resume_at: float | None = None  # reconnect not before (monotonic)
        self._watch: Watch | None = None
        self._idling: Waiting | None = None
        self._wait_until = 0.0
        self._woke = 0.0  # when the server's report, or the clock, woke the watcher
        self._first = True
        self._ticket = 0

    def start(self) -> None:
        self.parking.run(self.step)

    def stop(self) -> None:
        self.stopping = True
        self.parking.wake(self._ticket)

    def lose_lease(self) -> None:
        """Another process watches the account now: stop waiting, and lease it again."""
        self.lost = True
        self.parking.wake(self._ticket)

    def step(self, readable: bool) -> None:
        if self.stopping:
            self._finish()
            return
        try:
            if self._idling is not None:
                self._heard(readable)
            elif self._watch is not None:
                self._round()
            else:
                self._start()
        except (MailboxUnreachable, MailboxTimeout) as exc:
            # an outage: come back the moment it ends; but a server that accepted the probe
            # and still failed is backed off from, not probed again at once
            self._lose(exc, probe=not self._probed)
        except MailboxError as exc:
            self._lose(exc, probe=False)
        except Exception:
            log.exception("watcher crashed", extra={"account_id": self.account_id})
            self._lose(None, probe=False)

    def _park(self, seconds: float, sock: socket.socket | None = None) -> None:
        self._ticket = self.parking.park(self.step, seconds, sock)
        if self.stopping:  # stopped while this step ran: its wake found nothing parked
            self.parking.wake(self._ticket)

    def _start(self) -> None:
        """Lease the account, connect, and run the first round."""
        if self._resume_at is not None:
            remaining = self._resume_at - time.monotonic()
            if remaining > 0 and not (self._probing and self._accepts()):
                self._park(min(remaining, PROBE_EVERY) if self._probing else remaining)
                return
            self._probed = remaining > 0  # the probe ended the wait
            self._resume_at = None
        if not leases.acquire(self.gw.engine, self.lease, self.owner, LEASE):
            self._park(BEAT)  # another process watches it (or is letting it go)
            return
        self.lost = False
        with Session(self.gw.engine) as session:
            account = session.get(Account, self.account_id)
        self._adapter = None if account is None else self.gw.mailboxes.adapter(account)
        watch = None if self._adapter is None else self._adapter.open_watch()
        if watch is None:  # the account is gone, or its server cannot tell of changes
            self._finish()
            return
        self._watch, self._first = watch, True
        self.connections += 1
        self.gw.metrics.watched_accounts.inc()
        # Where the server tells of every folder, rounds on the clock are only a safety net;
        # elsewhere they are how the other folders are watched.
        self.notify = watch.everywhere
        self._woke = time.perf_counter()
        self._round()

    def _round(self) -> None:
        watch = self._watch
        assert watch is not None
        if self.lost:  # another process took the lease over (this one was cut off)
            self._close()
            self._park(BEAT)
            return
        started = time.perf_counter()
        found = watch.round()
        if found.events:  # recorded by now: the lag since the wake that led here
            self.gw.metrics.watch_lag.observe(time.perf_counter() - self._woke)
        if self._first:
            mark_working(self.gw.engine, self.account_id)
            self.failures, self._first, self._probed = 0, False, False
        log.log(
            logging.INFO if found.events else logging.DEBUG,  # quiet rounds are frequent
            "watch ok",
            extra={
                "account_id": self.account_id,
                "operation": "watch",
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "outcome": "ok",
                "events": found.events,
                "deferred": found.deferred,
            },
        )
        if found.deferred:  # the gateway itself is changing a folder: look again shortly
            self._park(DEFERRED_RETRY)
            return
        idling = watch.begin_wait()
        if idling is None:  # news came while it looked: round again at once
            self._woke = time.perf_counter()
            self._park(0)
            return
        self._idling = idling
        self._wait_until = time.monotonic() + (SAFETY_ROUND if self.notify else self.interval)
        self.waiting.set()
        self._park(SAFETY_ROUND if self.notify else self.interval, idling.socket)

    def _heard(self, readable: bool) -> None:
        """The server spoke, or the wait's time is up (or the watcher is told to look)."""
        idling = self._idling
        assert idling is not None
        if readable and not idling.heard():  # e.g. "* OK Still here": wait on
            remaining = self._wait_until - time.monotonic()
            if remaining > 0 and not self.lost:
                self._park(remaining, idling.socket)
                return
        self.waiting.clear()
        self._idling = None
        idling.end()
        self._woke = time.perf_counter()
        self._round()

    def _accepts(self) -> bool:
        return self._adapter is not None and self._adapter.accepts_connections(PROBE_EVERY)

    def _lose(self, error: MailboxError | None, probe: bool) -> None:
        """The connection failed: close it and come back after a backoff (probing the
        server every second during it, after an outage)."""
        self._close()
        self.failures += 1
        if error is not None:
            log.warning(
                "watcher lost the mailbox; reconnecting",
                extra={
                    "account_id": self.account_id,
                    "error": error.detail,
                    "attempt": self.failures,
                },
            )
            if self.failures >= FAILED_AFTER:
                with contextlib.suppress(Exception):
                    mark_failed(self.gw.engine, self.account_id, error)
        wait = backoff(self.failures, base=1.0, cap=RECONNECT_CAP)
        self._resume_at, self._probing = time.monotonic() + wait, probe
        self._park(min(wait, PROBE_EVERY) if probe else wait)

    def _close(self) -> None:
        self.waiting.clear()
        idling, self._idling = self._idling, None
        watch, self._watch = self._watch, None
        if watch is None:
            return
        self.gw.metrics.watched_accounts.dec()
        if idling is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                idling.end()
        watch.close()

    def _finish(self) -> None:
        self._close()
        with contextlib.suppress(Exception):
            leases.release(self.gw.engine, self.lease, self.owner)
        self.done.set()


def ranks_first(account_id: str, owner: str, members: list[str]) -> bool:
    """Whether ``owner`` is the live process that should watch the account: the one its
    hash ranks first (rendezvous hashing; any process computes the same)."""
    if not members:
        return True

    def rank(member: str) -> bytes:
        return hashlib.sha256(f"{member}\0{account_id}".encode()).digest()

    return max(members, key=rank) == owner


class ImapWatchers:
    """Keeps a watcher running for each IMAP account this process should watch, restarting
    it when the account changes; renews this process's leases in one statement a beat."""

    def __init__(self, gw: Gateway, interval: float, workers: int = WORKERS) -> None:
        self.gw = gw
        self.interval = interval
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.running: dict[str, tuple[object, AccountWatcher]] = {}
        self.members: list[str] = []
        self.parking = Parking(workers)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._keeper: threading.Thread | None = None

    def reconcile(self) -> None:
        with self._lock:
            if self._keeper is None:
                self._beat()
                self._keeper = threading.Thread(target=self._keep, name="watch-leases")
                self._keeper.daemon = True
                self._keeper.start()
            self._reconcile()

    def _reconcile(self) -> None:
        accounts = accounts_that(self.gw.engine, server_watch=True)
        wanted = {
            a.id: settings_fingerprint(a)
            for a in accounts
            if ranks_first(a.id, self.owner, self.members)
        }
        for account_id, (version, watcher) in list(self.running.items()):
            if wanted.get(account_id) != version or watcher.done.is_set():
                watcher.stop()  # it lets its lease go when its step ends
                del self.running[account_id]
        for account_id, version in wanted.items():
            if account_id not in self.running:
                owner = f"{self.owner}:{secrets.token_hex(3)}"
                watcher = AccountWatcher(self.gw, account_id, self.interval, owner, self.parking)
                self.running[account_id] = (version, watcher)
                watcher.start()

    def _beat(self) -> bool:
        """Renew this process's leases; True when the live processes changed."""
        engine = self.gw.engine
        held = leases.renew_owned(engine, self.owner, LEASE)  # the member lease among them
        if MEMBER + self.owner not in held:  # the first beat (or the row went): announce
            leases.acquire(engine, MEMBER + self.owner, f"{self.owner}:member", LEASE)
        for _, watcher in list(self.running.values()):
            if watcher.waiting.is_set() and watcher.lease not in held:
                log.warning("watch lease taken over", extra={"account_id": watcher.account_id})
                watcher.lose_lease()
        members = [owner.rsplit(":", 1)[0] for owner in leases.live_owners(engine, MEMBER)]
        changed, self.members = members != self.members, members
        return changed

    def _keep(self) -> None:
        while not self._stopped.wait(BEAT):
            try:
                with self._lock:
                    if self._beat():
                        self._reconcile()
            except Exception:
                log.exception("watch lease renewal failed")

    async def run_forever(self, every: float = 5.0) -> None:
        """Reconcile every ``every`` seconds, and at once when this process commits a change
        of an account (a new account is watched from the moment it is added)."""
        loop = asyncio.get_running_loop()
        while True:
            seen = accounts_changed.rung
            try:
                await loop.run_in_executor(None, self.reconcile)
            except Exception:
                log.exception("watcher bookkeeping failed")
            await accounts_changed.wait(every, seen)

    def close(self, wait: float = 5.0) -> None:
        self._stopped.set()
        with self._lock:
            watchers = [watcher for _, watcher in self.running.values()]
            self.running.clear()
        for watcher in watchers:
            watcher.stop()
        deadline = time.monotonic() + wait
        for watcher in watchers:
            watcher.done.wait(max(deadline - time.monotonic(), 0.1))
        self.parking.close()
        with contextlib.suppress(Exception):
            leases.release(self.gw.engine, MEMBER + self.owner, f"{self.owner}:member")
