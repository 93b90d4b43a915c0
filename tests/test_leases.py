"""Leases on both databases: one owner at a time, taken over only once lapsed."""

from __future__ import annotations

import time
from datetime import timedelta

from mailgate.gateway.context import Gateway
from mailgate.store.leases import acquire, release, renewed

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


def test_a_renewed_lease_outlives_its_ttl_while_the_work_runs(gateway: Gateway) -> None:
    """A short lease renewed by its heartbeat: nobody takes it over while the work runs,
    however long that is; once the work ends it lapses within its ttl (a killed process's
    work is picked up within a minute, not after the 10 minutes a POP3 sync held)."""
    engine, short = gateway.engine, timedelta(seconds=0.3)
    assert acquire(engine, "pop3-sync:acc_1", "worker", short)
    with renewed(engine, "pop3-sync:acc_1", "worker", short):
        time.sleep(1.0)  # three times its ttl
        assert not acquire(engine, "pop3-sync:acc_1", "other", short)
    time.sleep(0.4)  # no heartbeat any more: it lapses
    assert acquire(engine, "pop3-sync:acc_1", "other", short)
