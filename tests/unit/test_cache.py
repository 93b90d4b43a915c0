"""The TTL cache in front of API key lookups."""

from __future__ import annotations

import time

from mailgate.gateway.cache import TtlCache


def test_entries_expire() -> None:
    cache = TtlCache(seconds=0.05)
    cache.put("k", "v")
    assert cache.get("k") == "v"
    time.sleep(0.08)
    assert cache.get("k") is None


def test_zero_seconds_disables_and_size_is_bounded() -> None:
    off = TtlCache(seconds=0)
    off.put("k", "v")
    assert off.get("k") is None
    small = TtlCache(seconds=60, max_entries=3)
    for i in range(10):
        small.put(str(i), str(i))
    assert small.get("9") == "9"
    assert sum(small.get(str(i)) is not None for i in range(10)) <= 3
