"""Waiting for the server to report a change: IDLE (RFC 2177) where offered, else NOOP
polling; with NOTIFY (RFC 5465) the server reports changes of every folder, not only the
selected one, while idling."""

from __future__ import annotations

import contextlib
import imaplib
import threading
import time
from collections.abc import Callable
from typing import Any

from imapclient import IMAPClient

from mailgate.adapters.base import WatchRound
from mailgate.adapters.imap import wire
from mailgate.adapters.imap.connect import NOT_A_REFUSAL
from mailgate.adapters.imap.pool import connection_errors

# Responses that mean the selected folder changed (RFC 3501 section 7.4, RFC 7162 VANISHED),
CHANGES = {b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED", b"RECENT"}
# ... and, under NOTIFY, that another folder did (STATUS) or the folder list (LIST).
ELSEWHERE = {b"STATUS", b"LIST"}
# The same, as imaplib files them when they come with another command's answer.
ELSEWHERE_NEWS = tuple(sorted(name.decode() for name in ELSEWHERE))
# NOTIFY for new, expunged and re-flagged mail everywhere, and for folders made, renamed or
# deleted (RFC 5465 section 5; FlagChange needs the other two).
NOTIFY_SET = [
    b"SET",
    b"(selected (MessageNew MessageExpunge FlagChange))",
    b"(personal (MessageNew MessageExpunge FlagChange MailboxName))",
]
# How often a waiting watcher looks up to see whether it should stop.
STOP_CHECK = 1.0
# Rounds in a row a watch may ask for at once (news came while it looked) before it waits
# anyway: a server that always seems to have news must not keep it spinning.
QUICK_ROUNDS = 3


def wait_for_change(client: IMAPClient, seconds: float, stop: threading.Event) -> bool:
    """Wait up to ``seconds`` (keep it under the 29 minutes of RFC 2177) for a change of the
    selected folder; True when the server reported one, False on timeout or ``stop``."""
    if not client.has_capability("IDLE"):
        stop.wait(seconds)
        return not stop.is_set() and _changed(client.noop()[1])
    deadline = time.monotonic() + seconds
    client.idle()
    try:
        if wire.take_news(client):  # told before the server began to idle
            return True
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


def notify_everywhere(client: IMAPClient) -> bool:
    """Ask the server to report changes of all folders while idling; False where it cannot
    (no NOTIFY, or it refused), and the caller polls the other folders instead."""
    if not client.has_capability("NOTIFY") or not client.has_capability("IDLE"):
        return False
    try:
        typ = wire.command(client, b"NOTIFY", NOTIFY_SET)
    except NOT_A_REFUSAL:
        raise
    except imaplib.IMAP4.error:
        return False
    return bool(typ == "OK")


def _moved(selected: dict[bytes, Any], seen: tuple[int, int]) -> bool:
    """Whether INBOX as SELECT answers differs from ``seen`` (UIDNEXT, MESSAGES): its message
    count, or its UIDNEXT where the server sends one (Courier's SELECT has none)."""
    uidnext, exists = selected.get(b"UIDNEXT"), selected.get(b"EXISTS")
    return (exists is not None and int(exists) != seen[1]) or (
        uidnext is not None and int(uidnext) != seen[0]
    )


def _changed(responses: list[Any]) -> bool:
    return any(
        isinstance(response, tuple)
        and len(response) > 1
        and (response[1] in CHANGES or response[0] in ELSEWHERE)
        for response in responses
    )


class ImapWatch:
    """A watcher's own connection (:class:`mailgate.adapters.base.Watch`): rounds over the
    folders (``look``, adapters.imap.watch) and, between them, IDLE on INBOX, hearing of
    every folder where the server offers NOTIFY."""

    def __init__(self, client: IMAPClient, look: Callable[[IMAPClient], WatchRound]) -> None:
        self.client = client
        self._look = look
        self._seen: WatchRound | None = None  # the last round
        self._heard = False  # the server told of a change while the last round looked
        self._quick = 0  # rounds asked for at once in a row
        with connection_errors(client):
            self.everywhere = notify_everywhere(client)

    def round(self) -> WatchRound:
        with connection_errors(self.client):
            heard = wire.dropped_news(self.client)
            self._seen = self._look(self.client)
            self._heard = wire.dropped_news(self.client) > heard
            return self._seen

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Wait for news, unless some came while the last round looked: mail in INBOX after
        the round read its numbers, or a change the server told of meanwhile (under NOTIFY,
        of any folder). Then return at once, for the next round."""
        with connection_errors(self.client):
            # Under NOTIFY, other folders' news may have come with the round's last answers
            # (SELECT forgets them) or with the SELECT's. The EXISTS and FETCH left of the
            # round's own EXAMINE are no news: INBOX is compared below instead.
            heard = wire.take_news(self.client, ELSEWHERE_NEWS) or self._heard
            selected = self.client.select_folder("INBOX", readonly=True)
            heard = wire.take_news(self.client, ELSEWHERE_NEWS) or heard
            wire.take_news(self.client)  # the SELECT's own EXISTS
            seen = self._seen.inbox if self._seen is not None else None
            moved = seen is not None and _moved(selected, seen)
            if (heard or moved) and self._quick < QUICK_ROUNDS:
                self._quick += 1
                return
            self._quick = 0
            wait_for_change(self.client, seconds, stop)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection is being abandoned anyway
            self.client.shutdown()
