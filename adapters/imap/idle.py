"""Waiting for the server to report a change of the selected folder: IDLE (RFC 2177) where
offered, else NOOP polling."""

from __future__ import annotations

import imaplib
import threading
import time
from typing import Any

from imapclient import IMAPClient

# Responses that mean the folder changed (RFC 3501 section 7.4, RFC 7162 VANISHED).
CHANGES = {b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED", b"RECENT"}
# How often a waiting watcher looks up to see whether it should stop.
STOP_CHECK = 1.0


def wait_for_change(client: IMAPClient, seconds: float, stop: threading.Event) -> bool:
    """Wait up to ``seconds`` (keep it under the 29 minutes of RFC 2177) for a change of the
    selected folder; True when the server reported one, False on timeout or ``stop``."""
    if not client.has_capability("IDLE"):
        stop.wait(seconds)
        return not stop.is_set() and _changed(client.noop()[1])
    deadline = time.monotonic() + seconds
    client.idle()
    try:
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            wait = min(remaining, STOP_CHECK)
            started = time.monotonic()
            responses = client.idle_check(timeout=wait)
            if any(r and r[0] == b"BYE" for r in responses if isinstance(r, tuple)):
                raise imaplib.IMAP4.abort("the server closed the connection (BYE)")
            if _changed(responses):
                return True
            if not responses and time.monotonic() - started < wait / 2:
                # imapclient swallows EOF: nothing read although the socket was readable.
                # Ending IDLE tells: DONE on a closed connection raises.
                return False
        return False
    finally:
        client.idle_done()


def _changed(responses: list[Any]) -> bool:
    return any(
        isinstance(response, tuple) and len(response) > 1 and response[1] in CHANGES
        for response in responses
    )
