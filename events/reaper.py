"""Closes pooled mailbox connections left idle past their limit (the pool itself only drops
a stale connection when it is next borrowed, so an account nobody reads kept one open)."""

from __future__ import annotations

import asyncio
import logging

from mailgate.gateway.context import Gateway

log = logging.getLogger("mailgate.reaper")

EVERY = 30.0  # seconds between looks; a connection lives at most its pool's max_idle + this


class PoolReaper:
    def __init__(self, gw: Gateway, every: float = EVERY) -> None:
        self.gw = gw
        self.every = every

    def reap(self) -> int:
        closed = self.gw.mailboxes.reap()
        if closed:
            log.info("idle connections closed", extra={"operation": "reap", "closed": closed})
        return closed

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.every)
            try:
                await loop.run_in_executor(None, self.reap)
            except Exception:
                log.exception("reaping idle connections failed")
