"""Where idle watchers wait without a thread each: one thread holds every waiting watcher's
socket on a selector, and every watcher's next timer, and hands a watcher whose server spoke
(or whose time came) to a bounded pool of worker threads, which run its next step. So a
thousand idle accounts cost a socket and a few objects each, not a thread and its stack."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger("mailgate.watch")

# The longest the selector sleeps before it looks at the clock again.
TICK = 1.0

Step = Callable[[bool], None]
"""A watcher's next step, run in a worker thread; True when its socket became readable."""


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    ticket: int = field(compare=False)


class Parking:
    """Run watcher steps on ``workers`` threads; between steps a watcher is parked here."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="watch")
        self._selector = selectors.DefaultSelector()
        self._waker, self._woken = socket.socketpair()
        self._woken.setblocking(False)
        self._selector.register(self._woken, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._pending: list[tuple[int, Step, socket.socket | None, float]] = []
        self._timers: list[_Timer] = []
        self._tickets = itertools.count(1)
        self._live: dict[int, socket.socket | None] = {}  # ticket -> its socket, while parked
        self._seq = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="watch-parking", daemon=True)
        self._thread.start()

    def run(self, step: Step) -> None:
        """Run ``step`` on a worker now."""
        self._submit(step, False)

    def park(self, step: Step, seconds: float, sock: socket.socket | None = None) -> int:
        """Run ``step`` when ``sock`` becomes readable (``step(True)``) or after ``seconds``
        (``step(False)``), whichever comes first; a ticket for :meth:`wake`."""
        ticket = next(self._tickets)
        with self._lock:
            self._pending.append((ticket, step, sock, time.monotonic() + seconds))
        self._ring()
        return ticket

    def wake(self, ticket: int) -> None:
        """Run the step parked with ``ticket`` now (as if its time had come), if it is
        still parked."""
        with self._lock:
            self._pending.append((ticket, _NOTHING, None, 0.0))
        self._ring()

    def close(self, wait: float = 5.0) -> None:
        self._closed = True
        self._ring()
        self._thread.join(timeout=wait)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _ring(self) -> None:
        with contextlib.suppress(OSError):  # its buffer is full: it will wake anyway
            self._waker.send(b"\0")

    def _submit(self, step: Step, readable: bool) -> None:
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # shut down meanwhile
            self._pool.submit(_guarded, step, readable)

    def _run(self) -> None:
        steps: dict[int, Step] = {}
        while not self._closed:
            timeout = TICK
            if self._timers:
                timeout = min(TICK, max(self._timers[0].due - time.monotonic(), 0.0))
            for key, _ in self._selector.select(timeout):
                if key.data is None:
                    self._drain()
                    continue
                self._fire(key.data, steps, True)
            self._take_pending(steps)
            now = time.monotonic()
            while self._timers and self._timers[0].due <= now:
                timer = heapq.heappop(self._timers)
                self._fire(timer.ticket, steps, False)
        for sock in list(self._live.values()):
            if sock is not None:
                self._selector.unregister(sock)
        self._selector.close()
        self._waker.close()
        self._woken.close()

    def _take_pending(self, steps: dict[int, Step]) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for ticket, step, sock, due in pending:
            if step is _NOTHING:  # a wake
                self._fire(ticket, steps, False)
                continue
            steps[ticket] = step
            self._live[ticket] = sock
            if sock is not None:
                try:
                    self._selector.register(sock, selectors.EVENT_READ, ticket)
                except (ValueError, OSError):  # closed meanwhile: its step finds out
                    self._live[ticket] = None
                    self._fire(ticket, steps, True)
                    continue
            heapq.heappush(self._timers, _Timer(due, next(self._seq), ticket))

    def _fire(self, ticket: int, steps: dict[int, Step], readable: bool) -> None:
        """Hand the step parked with ``ticket`` to a worker, once (its timer or socket may
        fire later still: it is then forgotten)."""
        if ticket not in self._live:
            return
        sock = self._live.pop(ticket)
        step = steps.pop(ticket)
        if sock is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(sock)
        self._submit(step, readable)

    def _drain(self) -> None:
        try:
            while self._woken.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass


def _nothing(_readable: bool) -> None:
    """Marks a wake among the pending parks."""


_NOTHING: Step = _nothing


def _guarded(step: Step, readable: bool) -> None:
    try:
        step(readable)
    except Exception:
        log.exception("watcher step failed")
