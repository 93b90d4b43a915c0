"""Exponential backoff with full jitter, for anything that retries (webhook deliveries,
mailbox watchers reconnecting)."""

from __future__ import annotations

import random


def backoff(attempts: int, base: float = 2.0, cap: float = 3600.0, floor: float = 1.0) -> float:
    """Seconds until the next try after ``attempts`` failed ones: uniform in [floor, ceiling]
    where the ceiling doubles per attempt up to ``cap``, so retries of many clients spread."""
    ceiling = min(cap, base * 2 ** min(attempts, 32))
    return max(floor, random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto
