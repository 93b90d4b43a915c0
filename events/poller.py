"""Background refresh of accounts: every interval each account's ``refresh()`` runs (POP3:
new mail is downloaded into the store before anyone asks; IMAP: one watch round). `mailgate
serve` runs it for POP3 only, since IMAP accounts have their own watchers
(events.watchers). Accounts sync side by side in a small thread pool, so one slow mailbox
does not hold up the others; the per-account lease keeps several processes from syncing one
account twice.

For POP3 the poller looks every ``TICK`` seconds for the accounts due: those whose last
finished sync is older than the interval, or whose first sync has not finished. So an
account whose sync died with its process (its lease lapsing within 20 s) is taken up by
another process within seconds of that, not an interval later; an account whose sync
failed is tried again an interval later."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlmodel import Session

from mailgate.domain.errors import MailboxBusy, MailboxError
from mailgate.gateway.context import Gateway
from mailgate.gateway.health_state import mark_failed, mark_working
from mailgate.gateway.mailboxes import accounts_that
from mailgate.store.first_sync import last_synced
from mailgate.store.models import Account, utcnow

TICK = 5.0  # seconds between looks for POP3 accounts due a sync

log = logging.getLogger("mailgate.background")


class MailPoller:
    def __init__(
        self,
        gateway: Gateway,
        interval: float,
        workers: int = 4,
        kept_state_only: bool = False,
    ) -> None:
        """``kept_state_only``: only the accounts whose state Mailgate keeps (POP3), which
        have no watcher; else every account (for IMAP, a refresh is one watch round)."""
        self.gateway = gateway
        self.interval = interval
        self.keeps_state = True if kept_state_only else None
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pop3-sync")
        self._retry_at: dict[str, float] = {}  # account id -> not before (monotonic)

    def accounts(self) -> list[Account]:
        return accounts_that(self.gateway.engine, keeps_state=self.keeps_state)

    def due(self) -> list[Account]:
        """The accounts to refresh now: for POP3, those not synced within the interval (or
        never to the end) and not failed within it; else all of them."""
        accounts = self.accounts()
        if self.keeps_state is None:
            return accounts
        with Session(self.gateway.engine) as session:
            synced = last_synced(session, [a.id for a in accounts])
        stale, now = utcnow() - timedelta(seconds=self.interval), time.monotonic()
        return [
            a
            for a in accounts
            if self._retry_at.get(a.id, 0.0) <= now
            and (a.id not in synced or synced[a.id] <= stale)
        ]

    def sync_one(self, account: Account) -> bool:
        started = time.perf_counter()
        outcome = "ok"
        try:
            self.gateway.mailboxes.adapter(account).refresh()
        except MailboxBusy as exc:  # locked by another session: nothing wrong, next round
            outcome = exc.type
            log.info(
                "mailbox busy; next round", extra={"account_id": account.id, "error": exc.detail}
            )
            return False
        except MailboxError as exc:
            outcome = exc.type
            log.warning(
                "background sync failed",
                extra={"account_id": account.id, "error": exc.detail},
            )
            mark_failed(self.gateway.engine, account.id, exc)
            self._retry_at[account.id] = time.monotonic() + self.interval
            return False
        except Exception:
            outcome = "crashed"
            log.exception("background sync crashed", extra={"account_id": account.id})
            self._retry_at[account.id] = time.monotonic() + self.interval
            return False
        finally:
            if self.gateway.mailboxes.keeps_state(account):  # a POP3 sync, not a watch round
                self.gateway.metrics.pop3_sync_duration.labels(outcome).observe(
                    time.perf_counter() - started
                )
        self._retry_at.pop(account.id, None)
        mark_working(self.gateway.engine, account.id)
        return True

    def run_once(self) -> int:
        """Refresh every account once (POP3: download; IMAP: look for changes made on the
        server); returns how many succeeded."""
        return sum(self.pool.map(self.sync_one, self.due()))

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.run_once)
            except Exception:
                log.exception("background round failed")
            await asyncio.sleep(min(self.interval, TICK) if self.keeps_state else self.interval)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
