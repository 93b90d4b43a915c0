"""Waiting for the server to report a change: IDLE (RFC 2177) where offered, else NOOP
polling; with NOTIFY (RFC 5465) the server reports changes of every folder, not only the
selected one, while idling."""

from __future__ import annotations

import contextlib
import imaplib
import select
import socket
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


class Idling:
    """A wait for news under way on a watch's connection (:class:`mailgate.adapters.base.
    Waiting`): IDLE (RFC 2177), whose ``socket`` becomes readable when the server speaks;
    without IDLE no socket, and a NOOP at the end asks for what changed."""

    def __init__(self, client: IMAPClient, sock: socket.socket | None) -> None:
        self.client = client
        self.socket = sock

    def heard(self) -> bool:
        """Read what the server sent (the socket was readable): True when it tells of a
        change, or when nothing could be read (the connection closed, which ending the
        wait then reports); a BYE raises."""
        with connection_errors(self.client):
            names = [_name(line) for line in wire.idle_news(self.client)]
            if b"BYE" in names:
                raise imaplib.IMAP4.abort("the server closed the connection (BYE)")
            # nothing read although the socket was readable: the peer closed it
            return not names or any(name in CHANGES or name in ELSEWHERE for name in names)

    def end(self) -> None:
        """End the wait: DONE (raises on a connection that has gone), or the NOOP."""
        with connection_errors(self.client):
            if self.socket is not None:
                wire.idle_done(self.client)
            else:
                wire.noop(self.client)

    def block(self, seconds: float, stop: threading.Event) -> bool:
        """Wait here, up to ``seconds`` or until ``stop``, and end the wait; True when the
        server told of a change."""
        deadline = time.monotonic() + seconds
        told = False
        try:
            while not told and not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self.socket is None:
                    stop.wait(min(remaining, STOP_CHECK))
                    continue
                readable, _, _ = select.select([self.socket], [], [], min(remaining, STOP_CHECK))
                told = bool(readable) and self.heard()
        finally:
            self.end()
        return told


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


def _name(line: bytes) -> bytes:
    """The name of an untagged response as sent (``* 3 EXISTS``: EXISTS, ``* STATUS ...``:
    STATUS), upper-cased; empty for a line that is not one."""
    words = line.rstrip(b"\r\n").split(b" ", 3)
    if len(words) < 2 or words[0] != b"*":
        return b""
    name = words[2] if words[1].isdigit() and len(words) > 2 else words[1]
    return name.upper()


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

    def begin_wait(self) -> Idling | None:
        """Start waiting for news, unless some came while the last round looked: mail in
        INBOX after the round read its numbers, or a change the server told of meanwhile
        (under NOTIFY, of any folder). Then None: the watcher rounds again at once."""
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
                return None
            if not self.client.has_capability("IDLE"):
                self._quick = 0
                return Idling(self.client, None)
            self.client.idle()
            # told before the server began to idle, or already read along with its "+"
            early = wire.take_news(self.client) or wire.buffered(self.client)
            if early and self._quick < QUICK_ROUNDS:
                self._quick += 1
                wire.idle_done(self.client)
                return None
            self._quick = 0
            return Idling(self.client, self.client.socket())

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Wait up to ``seconds`` for news, or for ``stop``, in this thread (the watchers
        of ``mailgate serve`` park :meth:`begin_wait`'s socket on a selector instead)."""
        idling = self.begin_wait()
        if idling is not None:
            idling.block(seconds, stop)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection is being abandoned anyway
            self.client.shutdown()
