"""Background work of `mailgate serve`: every interval, POP3 accounts are synced (new mail is
in the store before anyone asks) and IMAP accounts are polled for changes made on the server
(new mail, flags), which become events. Accounts sync side by side in a small thread pool, so
one slow mailbox does not hold up the others; the per-account lease keeps several
processes from syncing one account twice."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import Session, select

from adapters.errors import MailboxError
from gateway.context import Gateway
from gateway.health_state import mark_failed, mark_working
from store.models import Account

log = logging.getLogger("mailgate.background")


class MailPoller:
    def __init__(self, gateway: Gateway, interval: float, workers: int = 4) -> None:
        self.gateway = gateway
        self.interval = interval
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pop3-sync")

    def accounts(self) -> list[Account]:
        with Session(self.gateway.engine) as session:
            return list(session.exec(select(Account)).all())

    def sync_one(self, account: Account) -> bool:
        try:
            self.gateway.mailboxes.adapter(account).refresh()
        except MailboxError as exc:
            log.warning(
                "background sync failed",
                extra={"account_id": account.id, "error": exc.detail},
            )
            mark_failed(self.gateway, account.id, exc)
            return False
        except Exception:
            log.exception("background sync crashed", extra={"account_id": account.id})
            return False
        mark_working(self.gateway, account.id)
        return True

    def run_once(self) -> int:
        """Refresh every account once (POP3: download; IMAP: look for changes made on the
        server); returns how many succeeded."""
        return sum(self.pool.map(self.sync_one, self.accounts()))

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.run_once)
            except Exception:
                log.exception("background round failed")
            await asyncio.sleep(self.interval)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
