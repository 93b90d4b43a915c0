"""Server-Sent Events on the wire (WHATWG HTML section 9.2.5, the event stream format): the
frames of a :class:`~mailgate.gateway.push.Stream`, heartbeats while nothing happens, and
the wait between looks that holds neither a database connection nor a worker thread."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import anyio
from starlette.responses import StreamingResponse

from mailgate.gateway import push
from mailgate.gateway.context import Gateway

RETRY_MS = 2000  # how long a browser waits before it reconnects
MEDIA_TYPE = "text/event-stream"


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` answer that proxies neither buffer nor cache."""

    media_type = MEDIA_TYPE

    def __init__(self, content: AsyncIterator[bytes]) -> None:
        super().__init__(
            content,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


def encode(frame: push.Frame) -> bytes:
    """One event: ``id``, ``event`` and ``data`` lines and a blank line. The data is one line
    of JSON (which escapes every CR and LF)."""
    return f"id: {frame.id}\nevent: {frame.event}\ndata: {frame.data}\n\n".encode()


async def frames(
    gw: Gateway,
    stream: push.Stream,
    *,
    heartbeat: float,
    poll: float,
    duration: float | None,
    live: Callable[[], bool] | None = None,
    check_every: float = 10.0,
) -> AsyncIterator[bytes]:
    """The stream's bytes until the client goes away (Starlette then cancels this, at its
    next wait) or ``duration`` seconds pass. Each look at the change log is one short query
    in a worker thread; between looks it waits on the event loop for this process's commits
    (the bell) or ``poll`` seconds (other processes' commits). A process told to stop ends
    its streams (push.drain) after what was found is sent. Every ``check_every`` seconds it
    asks ``live`` whether the key it was opened with still lets its holder in, and ends when
    not (a deleted or expired key's stream does not go on for hours)."""
    started = last_sent = checked = time.monotonic()
    yield f"retry: {RETRY_MS}\n\n".encode()
    for frame in stream.opening:
        yield encode(frame)
    while not push.draining.is_set():
        if live is not None and time.monotonic() - checked >= check_every:
            if not await anyio.to_thread.run_sync(live):
                return
            checked = time.monotonic()
        seen = push.rung()
        found, more = await anyio.to_thread.run_sync(push.next_frames, gw, stream)
        for frame in found:
            yield encode(frame)
        now = time.monotonic()
        if found:
            last_sent = now
        if duration is not None and now - started >= duration:
            return
        if more:
            continue
        wait = min(poll, last_sent + heartbeat - now)
        if duration is not None:
            wait = min(wait, started + duration - now)
        await push.wait(wait, seen)
        if time.monotonic() - last_sent >= heartbeat:
            yield b": heartbeat\n\n"
            last_sent = time.monotonic()
