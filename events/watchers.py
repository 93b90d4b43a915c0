"""IMAP watchers of `mailgate serve`: one thread per IMAP account keeps its own connection,
waits on INBOX with IDLE (new mail there is reported within a second) and runs a watch round
over all watched folders when the server reports a change or every ``imap_poll_interval``
seconds (adapters.imap.watch). Where the server offers NOTIFY (RFC 5465) it reports changes
of every folder while the watcher idles, so the clock rounds become a 20 s safety net. A
broken connection is reopened with exponential backoff; the account's state and an
``account.error`` webhook say when it cannot be. A lease per account makes sure only one
gateway process watches it, so no change is reported twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta

from sqlmodel import Session

from mailgate.adapters.base import Watch
from mailgate.domain.errors import MailboxError, MailboxTimeout, MailboxUnreachable
from mailgate.gateway.backoff import backoff
from mailgate.gateway.context import Gateway
from mailgate.gateway.health_state import mark_failed, mark_working
from mailgate.gateway.mailboxes import accounts_that, settings_fingerprint
from mailgate.store import leases
from mailgate.store.models import Account
from mailgate.store.outbox import accounts_changed

log = logging.getLogger("mailgate.watch")

LEASE = timedelta(seconds=60)
RECONNECT_CAP = 300.0
DEFERRED_RETRY = 0.2
PROBE_EVERY = 1.0  # seconds between looks whether a server that went away is back
# A connection that drops and comes right back (a server restart) is no account error; one
# that cannot be reopened either is.
FAILED_AFTER = 2


class AccountWatcher:
    def __init__(self, gw: Gateway, account_id: str, interval: float, owner: str) -> None:
        self.gw = gw
        self.account_id = account_id
        # At least one round per third of the lease (each round renews it when due); so IDLE
        # is also re-issued far more often than the 29 minutes RFC 2177 allows.
        self.interval = min(interval, LEASE.total_seconds() / 3)
        self.owner = owner
        self.lease = f"imap-watch:{account_id}"
        self.stop_event = threading.Event()
        self.waiting = threading.Event()  # set while it waits for the server to report news
        self.thread = threading.Thread(target=self._run, name=f"watch-{account_id}", daemon=True)
        self.failures = 0
        self.connections = 0  # how many times it has (re)connected
        self.notify = False  # whether the server reports changes of every folder (NOTIFY)
        self._address: tuple[str, int] | None = None  # the server's, for the outage probe
        self._probed = False  # the last reconnect wait ended because the server was back

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            if not self._lease():
                self.stop_event.wait(LEASE.total_seconds() / 3)  # another process watches it
                continue
            probe = False
            try:
                self._watch()
            except (MailboxUnreachable, MailboxTimeout) as exc:
                self._failed(exc)
                # an outage: come back the moment it ends; but a server that accepted the
                # probe and still failed is backed off from, not probed again at once
                probe = not self._probed
            except MailboxError as exc:
                self._failed(exc)
            except Exception:
                log.exception("watcher crashed", extra={"account_id": self.account_id})
                self.failures += 1
            else:
                continue
            self._probed = self._pause(backoff(self.failures, base=1.0, cap=RECONNECT_CAP), probe)
        with contextlib.suppress(Exception):
            leases.release(self.gw.engine, self.lease, self.owner)

    def _lease(self) -> bool:
        return leases.acquire(self.gw.engine, self.lease, self.owner, LEASE)

    def _pause(self, seconds: float, probe: bool) -> bool:
        """Wait ``seconds`` before reconnecting; with ``probe``, look every second whether
        the server accepts connections again and end the wait then, so an outage costs its
        own length and a second, not the backoff that grew meanwhile. True when the probe
        ended it."""
        deadline = time.monotonic() + seconds
        while not self.stop_event.wait(min(PROBE_EVERY, max(deadline - time.monotonic(), 0))):
            if probe and self._accepts():
                return True
            if time.monotonic() >= deadline:
                return False
        return False

    def _accepts(self) -> bool:
        if self._address is None:
            return False
        try:
            socket.create_connection(self._address, timeout=PROBE_EVERY).close()
        except OSError:
            return False
        return True

    def _failed(self, error: MailboxError) -> None:
        self.failures += 1
        log.warning(
            "watcher lost the mailbox; reconnecting",
            extra={"account_id": self.account_id, "error": error.detail, "attempt": self.failures},
        )
        if self.failures >= FAILED_AFTER:
            mark_failed(self.gw.engine, self.account_id, error)

    def _watch(self) -> None:
        """Watch until stopped or the lease is lost; raises when the mailbox fails."""
        with Session(self.gw.engine) as session:
            account = session.get(Account, self.account_id)
        if account is not None:
            self._address = (account.host, account.port)
        watch = None if account is None else self.gw.mailboxes.adapter(account).open_watch()
        if watch is None:  # the account is gone, or its server cannot tell of changes
            self.stop_event.set()
            return
        self.connections += 1
        watched = self.gw.metrics.watched_accounts
        watched.inc()
        try:
            self._rounds(watch)
        finally:
            watched.dec()
            watch.close()

    def _rounds(self, watch: Watch) -> None:
        first, renewed = True, time.monotonic()  # _run took the lease just before
        # Where the server tells of every folder, rounds on the clock are only a safety net;
        # elsewhere they are how the other folders are watched.
        self.notify = watch.everywhere
        interval = LEASE.total_seconds() / 3 if self.notify else self.interval
        woke = time.perf_counter()  # the server's report, or the clock, woke the watcher
        while not self.stop_event.is_set():
            started = time.perf_counter()
            found = watch.round()
            if found.events:  # recorded by now: the lag since the wake that led here
                self.gw.metrics.watch_lag.observe(time.perf_counter() - woke)
            if first:
                mark_working(self.gw.engine, self.account_id)
                self.failures, first, self._probed = 0, False, False
            log.log(
                logging.INFO if found.events else logging.DEBUG,  # quiet rounds every 2 s
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
            if time.monotonic() - renewed > LEASE.total_seconds() / 3:
                if not self._lease():
                    return  # lapsed while we were cut off, and someone else watches now
                renewed = time.monotonic()
            if found.deferred:  # the gateway itself is changing a folder: look again shortly
                self.stop_event.wait(DEFERRED_RETRY)
                continue
            self.waiting.set()
            try:
                watch.wait(interval, self.stop_event)
            finally:
                self.waiting.clear()
            woke = time.perf_counter()


class ImapWatchers:
    """Keeps one watcher per IMAP account running, restarting it when the account changes."""

    def __init__(self, gw: Gateway, interval: float) -> None:
        self.gw = gw
        self.interval = interval
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.running: dict[str, tuple[object, AccountWatcher]] = {}

    def reconcile(self) -> None:
        accounts = accounts_that(self.gw.engine, server_watch=True)
        wanted = {a.id: settings_fingerprint(a) for a in accounts}
        stopped = []
        for account_id, (version, watcher) in list(self.running.items()):
            if wanted.get(account_id) != version or not watcher.thread.is_alive():
                watcher.stop()
                stopped.append(watcher)
                del self.running[account_id]
        for watcher in stopped:  # let it finish its round and give up its lease
            watcher.thread.join(timeout=10)
        for account_id, version in wanted.items():
            if account_id not in self.running:
                owner = f"{self.owner}:{secrets.token_hex(3)}"
                watcher = AccountWatcher(self.gw, account_id, self.interval, owner)
                self.running[account_id] = (version, watcher)
                watcher.start()

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
        watchers = [watcher for _, watcher in self.running.values()]
        self.running.clear()
        for watcher in watchers:
            watcher.stop()
        for watcher in watchers:
            watcher.thread.join(timeout=wait)
