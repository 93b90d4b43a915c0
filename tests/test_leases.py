"""Leases on both databases: one owner at a time, taken over only once lapsed."""

from __future__ import annotations

from datetime import timedelta

from mailgate.gateway.context import Gateway
from mailgate.store.leases import acquire, release

MINUTE = timedelta(minutes=1)


def test_one_owner_at_a_time(gateway: Gateway) -> None:
    engine = gateway.engine
    assert acquire(engine, "watch:acc_1", "process-a", MINUTE)
    assert acquire(engine, "watch:acc_1", "process-a", MINUTE)  # renewing
    assert not acquire(engine, "watch:acc_1", "process-b", MINUTE)
    assert acquire(engine, "watch:acc_2", "process-b", MINUTE)  # another lease is free
    release(engine, "watch:acc_1", "process-b")  # not b's to release
    assert not acquire(engine, "watch:acc_1", "process-b", MINUTE)
    release(engine, "watch:acc_1", "process-a")
    assert acquire(engine, "watch:acc_1", "process-b", MINUTE)


def test_a_lapsed_lease_can_be_taken_over(gateway: Gateway) -> None:
    engine = gateway.engine
    assert acquire(engine, "watch:acc_1", "crashed", -MINUTE)  # already lapsed
    assert acquire(engine, "watch:acc_1", "successor", MINUTE)
    assert not acquire(engine, "watch:acc_1", "crashed", MINUTE)
