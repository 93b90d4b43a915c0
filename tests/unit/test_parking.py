"""events.parking: steps parked on sockets and timers, run on a bounded pool of threads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from mailgate.events.parking import Parking


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, float]] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def step(self, name: str) -> Callable[[bool], None]:
        def run(readable: bool) -> None:
            with self.changed:
                self.calls.append((name, readable, time.monotonic()))
                self.threads.add(threading.current_thread().name)
                self.changed.notify_all()

        return run

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.calls) >= count, timeout), self.calls


@pytest.fixture
def parking() -> Iterator[Parking]:
    made = Parking(workers=4)
    yield made
    made.close()


def test_a_step_parked_on_a_socket_runs_when_it_becomes_readable(parking: Parking) -> None:
    recorder = Recorder()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        parking.park(recorder.step("idle"), 30.0, ours)
        time.sleep(0.2)
        assert recorder.calls == []  # nothing to read, its time far off
        sent = time.monotonic()
        theirs.send(b"* 1 EXISTS\r\n")
        recorder.wait_for(1)
    (name, readable, at) = recorder.calls[0]
    assert (name, readable) == ("idle", True)
    assert at - sent < 1.0


def test_a_step_runs_once_when_its_time_comes_and_not_again_for_its_socket(
    parking: Parking,
) -> None:
    recorder = Recorder()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        started = time.monotonic()
        parking.park(recorder.step("timer"), 0.3, ours)
        recorder.wait_for(1)
        theirs.send(b"late\r\n")  # the step was handed on: its socket is no longer watched
        time.sleep(0.3)
    assert [(n, r) for n, r, _ in recorder.calls] == [("timer", False)]
    assert recorder.calls[0][2] - started >= 0.29


def test_wake_runs_a_parked_step_at_once_and_a_stale_ticket_does_nothing(
    parking: Parking,
) -> None:
    recorder = Recorder()
    ticket = parking.park(recorder.step("woken"), 30.0)
    parking.wake(ticket)
    recorder.wait_for(1)
    parking.wake(ticket)  # already handed on
    time.sleep(0.2)
    assert [(n, r) for n, r, _ in recorder.calls] == [("woken", False)]


def test_many_parked_steps_share_a_few_threads(parking: Parking) -> None:
    """A thousand idle watchers cost no thread each: only the pool's workers run steps."""
    recorder = Recorder()
    pairs = [socket.socketpair() for _ in range(200)]
    try:
        before = threading.active_count()
        for n, (ours, _) in enumerate(pairs):
            parking.park(recorder.step(f"w{n}"), 30.0, ours)
        time.sleep(0.2)
        assert threading.active_count() == before  # parked: no thread each
        for _, theirs in pairs:
            theirs.send(b"x")
        recorder.wait_for(len(pairs))
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
    assert len({name for name, _, _ in recorder.calls}) == len(pairs)
    assert len(recorder.threads) <= 4
