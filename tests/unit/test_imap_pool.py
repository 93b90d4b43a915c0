"""adapters.imap.pool: an answer the adapter cannot read becomes ``mailbox-protocol-error``
(never a 500), and the connection that gave it is discarded; errors of our own pass through
with the connection kept; a dropped pooled connection is retried once. Fake connections
here; the same against real servers and the proxy: tests/test_imap_quirks.py.
"""

from __future__ import annotations

import imaplib
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest
from imapclient.exceptions import ProtocolError

from mailgate.adapters.imap import pool, wire
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import MailboxProtocolError, MailboxUnreachable, NotFound

PASSWORD = "s3cret-pw"


class FakeImap:
    """What wire.record hooks on imaplib.IMAP4: the debug hook and command completion."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _mesg(self, text: str, secs: Any = None) -> None:
        self.seen.append(text)

    def _command_complete(self, name: str, tag: Any) -> tuple[str, list[bytes]]:
        return "OK", [b"done"]


class FakeClient:
    def __init__(self, number: int) -> None:
        self.number = number
        self.host, self.port = "imap.example.org", 993
        self.shut = False
        self.logout_error: Exception | None = None
        self._imap = FakeImap()
        self._socket = socket.socket()  # what the pool's command deadline would shut down
        wire.record(self)  # type: ignore[arg-type]

    def socket(self) -> socket.socket:
        return self._socket

    def talk(self, command: str, *lines: str) -> None:
        """As imaplib would: log the command sent, complete it, log the lines read."""
        self._imap._mesg(f"> b'A{self.number} {command}'")
        self._imap._command_complete(command.split()[0], "A1")
        for line in lines:
            self._imap._mesg(f"< b'{line}'")

    def shutdown(self) -> None:
        self.shut = True
        self._socket.close()

    def logout(self) -> None:
        if self.logout_error is not None:
            raise self.logout_error
        self.shut = True


@pytest.fixture
def opened() -> list[FakeClient]:
    """Every connection the pool opens, in order."""
    return []


@pytest.fixture
def imap_pool(opened: list[FakeClient]) -> pool.ImapPool:
    def open_fake(endpoint: MailboxEndpoint) -> FakeClient:
        opened.append(FakeClient(len(opened) + 1))
        opened[-1].talk(f'LOGIN alice "{PASSWORD}"', "A1 OK Logged in")
        return opened[-1]

    endpoint = MailboxEndpoint("acc_1", "imap.example.org", 993, "tls", "alice", PASSWORD)
    return pool.ImapPool(endpoint, size=2, opener=open_fake)  # type: ignore[arg-type]


def fails_with(exc: BaseException) -> Callable[[FakeClient], None]:
    def operation(client: FakeClient) -> None:
        client.talk("UID FETCH 1:3 (UID FLAGS)", "* 1 FETCH (UID 1 FLAGS (\\\\Seen) RFC822.SIZE)")
        raise exc

    return operation


UNREADABLE = [
    ProtocolError("uneven number of response items"),  # imapclient's parser
    imaplib.IMAP4.error("unexpected response: '* XYZZY'"),  # imaplib
    imaplib.IMAP4.error("fetch failed: refused"),  # a NO nobody handled
    KeyError(b"UIDVALIDITY"),
    ValueError("invalid literal for int() with base 10: b'x'"),
    IndexError("tuple index out of range"),
    TypeError("'NoneType' object is not subscriptable"),
]


@pytest.mark.parametrize("exc", UNREADABLE, ids=lambda e: type(e).__name__)
def test_an_unreadable_answer_is_a_protocol_error_and_the_connection_goes(
    imap_pool: pool.ImapPool, opened: list[FakeClient], exc: BaseException
) -> None:
    with pytest.raises(MailboxProtocolError) as raised:
        imap_pool.run(fails_with(exc))
    assert raised.value.type == "mailbox-protocol-error"
    assert "imap.example.org:993" in raised.value.detail and "FETCH" in raised.value.detail
    assert PASSWORD not in raised.value.detail
    assert opened[0].shut  # discarded, not pooled
    assert imap_pool.run(lambda client: client.number) == 2  # the next operation: a new one


def test_the_log_has_the_wire_lines_and_never_the_password(
    imap_pool: pool.ImapPool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mailgate.imap")
    with pytest.raises(MailboxProtocolError):
        imap_pool.run(fails_with(ProtocolError("uneven number of response items")))
    [record] = [r for r in caplog.records if r.getMessage() == "imap answer not understood"]
    fields = vars(record)
    assert fields["server"] == "imap.example.org:993" and fields["command"] == "UID FETCH"
    assert any("RFC822.SIZE)" in line for line in fields["wire"])  # the raw line
    assert any("LOGIN ***" in line for line in fields["wire"])
    assert "uneven number" in fields["error"]
    assert PASSWORD not in caplog.text and PASSWORD not in str(fields)


def test_our_own_errors_pass_and_the_connection_stays(
    imap_pool: pool.ImapPool, opened: list[FakeClient]
) -> None:
    with pytest.raises(NotFound):
        imap_pool.run(fails_with(NotFound("message")))
    assert imap_pool.run(lambda client: client.number) == 1  # the same, from the pool
    assert not opened[0].shut


def test_a_dropped_pooled_connection_is_retried_once(
    imap_pool: pool.ImapPool, opened: list[FakeClient]
) -> None:
    imap_pool.run(lambda client: None)

    def bye_on_the_first(client: FakeClient) -> int:
        if client.number == 1:  # imaplib raises abort on an untagged BYE (RFC 3501 7.1.5)
            raise imaplib.IMAP4.abort("Server shutting down")
        return client.number

    assert imap_pool.run(bye_on_the_first) == 2
    assert opened[0].shut


def test_a_new_connection_that_drops_is_unreachable_at_once(
    imap_pool: pool.ImapPool, opened: list[FakeClient]
) -> None:
    with pytest.raises(MailboxUnreachable):
        imap_pool.run(fails_with(imaplib.IMAP4.abort("socket error: EOF")))
    assert len(opened) == 1 and opened[0].shut


def test_an_unreadable_answer_on_the_retry_is_a_protocol_error(
    imap_pool: pool.ImapPool, opened: list[FakeClient]
) -> None:
    imap_pool.run(lambda client: None)

    def drops_then_garbles(client: FakeClient) -> None:
        if client.number == 1:
            raise imaplib.IMAP4.abort("socket error: EOF")
        raise ProtocolError("bad response type")

    with pytest.raises(MailboxProtocolError):
        imap_pool.run(drops_then_garbles)
    assert [c.shut for c in opened] == [True, True]


def test_close_never_raises_when_the_server_ends_without_a_tagged_ok(
    imap_pool: pool.ImapPool, opened: list[FakeClient]
) -> None:
    imap_pool.run(lambda client: None)
    opened[0].logout_error = imaplib.IMAP4.abort("socket error: EOF")  # no tagged OK
    imap_pool.close()
    assert opened[0].shut  # closed all the same


def test_connection_errors_of_the_watchers_connection() -> None:
    client = FakeClient(1)
    watcher = pool.connection_errors(client)  # type: ignore[arg-type]
    with pytest.raises(MailboxProtocolError) as raised, watcher:
        client.talk("SELECT INBOX", "* OK [UIDVALIDITY x]")
        raise ValueError("invalid literal for int()")
    assert "imap.example.org:993" in raised.value.detail and "SELECT" in raised.value.detail
    watcher = pool.connection_errors(client)  # type: ignore[arg-type]
    with pytest.raises(MailboxUnreachable), watcher:
        raise imaplib.IMAP4.abort("Server shutting down")


def test_the_reaper_logs_out_of_connections_idle_past_the_limit(opened: list[FakeClient]) -> None:
    endpoint = MailboxEndpoint("acc_1", "imap.example.org", 993, "tls", "alice", PASSWORD)

    def open_fake(endpoint: MailboxEndpoint) -> FakeClient:
        opened.append(FakeClient(len(opened) + 1))
        return opened[-1]

    resting = pool.ImapPool(endpoint, max_idle=3600, opener=open_fake)  # type: ignore[arg-type]
    assert resting.run(lambda client: client.number) == 1
    assert resting.reap() == 0 and not opened[0].shut  # not idle long enough
    assert resting.run(lambda client: client.number) == 1  # still pooled
    stale = pool.ImapPool(endpoint, max_idle=0, opener=open_fake)  # type: ignore[arg-type]
    assert stale.run(lambda client: client.number) == 2
    assert stale.reap() == 1 and opened[1].shut  # logged out
    assert stale.reap() == 0
    assert stale.run(lambda client: client.number) == 3  # the next operation opens anew
