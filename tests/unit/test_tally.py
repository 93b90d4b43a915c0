"""gateway.tally: a key's requests counted in memory between batched writes."""

from __future__ import annotations

import pytest

from mailgate.gateway.tally import BATCH, WRITE_EVERY, Tallies, margin


class Database:
    """The shared count, as ``store.rate_limits.count_request`` keeps it."""

    def __init__(self, others: int = 0) -> None:
        self.count = others  # requests other processes wrote
        self.writes: list[int] = []

    def write(self, amount: int) -> int:
        self.writes.append(amount)
        self.count += amount
        return self.count


def test_the_first_request_of_a_window_is_written() -> None:
    tallies, database = Tallies(), Database(others=7)
    assert tallies.count_here("key:a", 600, 1000, 600.0) is None
    assert tallies.count_written("key:a", 600, 600.0, database.write) == 8
    # the next window starts with a write again
    assert tallies.count_here("key:a", 660, 1000, 660.0) is None


def test_requests_between_writes_are_counted_here_and_written_in_one_batch() -> None:
    tallies, database = Tallies(), Database()
    assert tallies.count_written("key:a", 600, 600.0, database.write) == 1
    kept = [tallies.count_here("key:a", 600, 1000, 600.1) for _ in range(BATCH)]
    assert kept == [*range(2, BATCH + 1), None]  # BATCH - 1 kept; the next one writes
    assert database.writes == [1]
    assert tallies.count_written("key:a", 600, 600.1, database.write) == BATCH + 1
    assert database.writes == [1, BATCH]  # the kept ones and this one
    # other keys are not concerned
    assert tallies.count_here("key:b", 600, 1000, 600.1) is None


def test_a_batch_is_kept_at_most_write_every_seconds() -> None:
    tallies, database = Tallies(), Database()
    tallies.count_written("key:a", 600, 600.0, database.write)
    assert tallies.count_here("key:a", 600, 1000, 600.0 + WRITE_EVERY / 2) == 2
    assert tallies.count_here("key:a", 600, 1000, 600.0 + WRITE_EVERY) is None


def test_near_its_limit_every_request_of_a_key_is_written() -> None:
    limit = 100
    tallies, database = Tallies(), Database(others=limit - margin(limit) - 2)
    used = tallies.count_written("key:a", 600, 600.0, database.write)
    assert used == limit - margin(limit) - 1
    assert tallies.count_here("key:a", 600, limit, 600.0) == limit - margin(limit)
    assert tallies.count_here("key:a", 600, limit, 600.0) is None  # past limit - margin
    # a small limit is all margin: every request is written
    assert tallies.count_here("key:a", 600, 10, 600.0) is None


def test_the_count_read_back_includes_what_other_processes_wrote() -> None:
    tallies, database = Tallies(), Database()
    tallies.count_written("key:a", 600, 600.0, database.write)
    assert tallies.count_here("key:a", 600, 1000, 600.0) == 2
    database.count += 40  # another process wrote its batches
    assert tallies.count_written("key:a", 600, 600.0, database.write) == 43
    assert tallies.count_here("key:a", 600, 1000, 600.0) == 44


def test_a_failed_write_keeps_the_requests_it_held() -> None:
    tallies, database = Tallies(), Database()
    tallies.count_written("key:a", 600, 600.0, database.write)
    tallies.count_here("key:a", 600, 1000, 600.0)
    tallies.count_here("key:a", 600, 1000, 600.0)

    def unreachable(amount: int) -> int:
        raise ConnectionError("database unreachable")

    with pytest.raises(ConnectionError):
        tallies.count_written("key:a", 600, 600.0, unreachable)
    # the two kept requests are written with the next one; the failed request is not counted
    assert tallies.count_written("key:a", 600, 600.0, database.write) == 4
    assert database.writes == [1, 3]
