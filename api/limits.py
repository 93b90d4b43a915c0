"""Fair shares of the worker threads: a tenant, and a mailbox, may hold only so many at once.

Routes that talk to a mailbox are plain functions run in the shared worker pool (blocking
protocol libraries), so one tenant flooding a slow or stuck mailbox could hold every worker
and starve everyone else. A request takes its tenant's slot (and its account's, where the
path names one) before it is given a worker; beyond the limit it waits on the event loop,
holding no worker. Limits come from the settings (``MAILGATE_MAX_REQUESTS_PER_TENANT``,
``MAILGATE_MAX_REQUESTS_PER_ACCOUNT``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio


class Limits:
    def __init__(self, per_tenant: int, per_account: int) -> None:
        self.per_tenant = per_tenant
        self.per_account = per_account
        self._tenants: dict[str, anyio.Semaphore] = {}
        self._accounts: dict[str, anyio.Semaphore] = {}

    async def hold(self, tenant_id: str, account_id: str | None) -> AsyncIterator[None]:
        """Hold the tenant's slot, and the account's, for the rest of the request."""
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self._slot(self._tenants, tenant_id, self.per_tenant))
            if account_id is not None:
                slot = self._slot(self._accounts, account_id, self.per_account)
                await stack.enter_async_context(slot)
            yield

    @staticmethod
    def _slot(slots: dict[str, anyio.Semaphore], key: str, size: int) -> anyio.Semaphore:
        semaphore = slots.get(key)
        if semaphore is None:  # (the event loop is one thread: no race here)
            semaphore = slots[key] = anyio.Semaphore(size)
        return semaphore
