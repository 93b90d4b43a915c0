"""A heartbeat: while a block of work runs, a thread of its own calls ``beat`` every few
seconds (renewing a lease or claims, so they can be short: a process that dies mid-way lets
the next one in within their ttl, however long the work takes)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("mailgate.leases")


@contextmanager
def heartbeat(every: float, beat: Callable[[], object], name: str) -> Iterator[None]:
    """Call ``beat`` every ``every`` seconds while the block runs; a beat that fails (the
    database is away) is logged, and the next one tries again."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                beat()
            except Exception:
                log.warning("renewal failed", extra={"work": name})

    beater = threading.Thread(target=run, name=f"heartbeat-{name}", daemon=True)
    beater.start()
    try:
        yield
    finally:
        stop.set()
        beater.join(timeout=5)
