"""A key's requests in the current minute, counted in memory and written to the database in
batches: the shared count every process adds to (``store.rate_limits``) without a write on
every request.

A process keeps up to ``BATCH - 1`` requests of a key, for at most ``WRITE_EVERY`` seconds, to
itself, and only while the key is far from its limit: within ``margin(limit)`` of it, and on
its first request of each window, every request is written and the answer read back, as
before. So one process alone counts exactly; several together may each let through what they
have not written yet, at most ``BATCH - 1`` requests each, and only while the key's count is
more than the margin below its limit. What the batches spare: the write (and the lock it
takes) on every request, which was a sixth of the CPU of a page read from the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

BATCH = 16  # the request that would make a batch this big writes it
WRITE_EVERY = 1.0  # seconds
_MAX_SUBJECTS = 100_000  # past this, the tallies of old windows go


def margin(limit: int) -> int:
    """How close to its limit a key's count is written on every request."""
    return max(limit // 8, 32)


@dataclass
class _Tally:
    window: int
    shared: int = 0  # the database's count at this process's last write (every process's)
    pending: int = 0  # counted here since, not written yet
    written_at: float = 0.0


class Tallies:
    """Thread-safe: the event loop counts, worker threads write."""

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}
        self._lock = threading.Lock()

    def count_here(self, subject: str, window: int, limit: int, now: float) -> int | None:
        """Count one request of ``subject`` without the database and answer how many it has
        made in the window, as far as this process knows; None when this one must be
        written (:meth:`count_written`): a new window, a full batch, a batch kept too long,
        or the limit near."""
        with self._lock:
            tally = self._tallies.get(subject)
            if tally is None or tally.window != window:
                return None
            used = tally.shared + tally.pending + 1
            if (
                tally.pending + 1 >= BATCH
                or now - tally.written_at >= WRITE_EVERY
                or used > limit - margin(limit)
            ):
                return None
            tally.pending += 1
            return used

    def count_written(
        self, subject: str, window: int, now: float, write: Callable[[int], int]
    ) -> int:
        """Count one request of ``subject`` with those kept so far: ``write(amount)`` adds
        them to the database's count and answers the new total, which this returns."""
        with self._lock:
            tally = self._tallies.get(subject)
            if tally is None or tally.window != window:
                if len(self._tallies) >= _MAX_SUBJECTS:
                    self._tallies = {s: t for s, t in self._tallies.items() if t.window >= window}
                tally = self._tallies[subject] = _Tally(window)
            amount, tally.pending = tally.pending + 1, 0
        try:
            total = write(amount)
        except BaseException:
            with self._lock:
                tally.pending += amount - 1  # kept for the next write; this one failed
            raise
        with self._lock:
            # writes of this process may finish out of order: the largest total is the latest
            tally.shared = max(tally.shared, total)
            tally.written_at = now
        return total
