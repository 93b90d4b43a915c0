"""A stuck command never outlives its request (issue 11): an IMAP operation that is not done
within MAILGATE_COMMAND_TIMEOUT answers 504 ``mailbox-timeout``, its connection is dropped
(never given back to the pool out of step) and the worker is free again; a POP3 command
not answered within it ends the sync, and the read that synced first answers from the
store (issue 15). The slow server is the real Dovecot behind the fault-injection proxy:
silent, or trickling its answer a line at a time, which no per-read socket timeout ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailgate.gateway.context import Gateway
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.proxy import FaultProxy
from tests.helpers import assert_problem
from tests.mail_factory import dated
from tests.test_imap_mail import Mailbox
from tests.test_imap_quirks import add_account, inbox
from tests.test_pop3 import add_pop3

DEADLINE = 2.0


@pytest.fixture
def gateway(tmp_path: Path, sqlite_url: str) -> Iterator[Gateway]:
    gw = Gateway.from_settings(make_settings(tmp_path, sqlite_url, command_timeout=DEADLINE))
    gw.migrate()
    yield gw
    gw.close()


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[FaultProxy]:
    with FaultProxy((dovecot.host, dovecot.imap_port)) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def proxied(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
    proxy: FaultProxy,
) -> Mailbox:
    return add_account(client, auth, dovecot, mail_user, proxy.port)


def test_a_silent_server_answers_504_and_the_next_request_gets_a_fresh_connection(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    dovecot.deliver(proxied.user, dated(2))
    assert len(inbox(proxied)) == 2  # a pooled connection, logged in
    proxy.stall()
    problem = assert_problem(proxied.call("GET", "/messages"), 504, "mailbox-timeout")
    assert f"within {DEADLINE:g} s" in str(problem["detail"])
    proxy.resume()
    opened = proxy.connections
    assert len(inbox(proxied)) == 2
    assert proxy.connections == opened + 1  # the stuck one was dropped, not reused


def test_a_server_trickling_its_answer_is_cut_off_at_the_deadline(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    """Each line of the FETCH answer comes 0.5 s after the last, well within any per-read
    timeout; 12 lines take 6 s, three times the deadline."""
    dovecot.deliver(proxied.user, dated(12))
    assert len(inbox(proxied)) == 12

    def trickle(line: bytes) -> bytes:
        if b" FETCH (" in line:
            time.sleep(0.5)
        return line

    proxy.rewrite(trickle)
    problem = assert_problem(proxied.call("GET", "/messages"), 504, "mailbox-timeout")
    assert "FETCH" in str(problem["detail"])
    proxy.rewrite(None)
    assert len(inbox(proxied)) == 12


def slow_message(lines: int) -> bytes:
    """A message of long body lines, each of which the proxy below holds back a while."""
    head = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Slow\r\n\r\n"
    return head + b"".join(b"SLOW " + b"z" * 20_000 + b"\r\n" for _ in range(lines))


def test_a_pop3_server_trickling_a_message_is_cut_off_at_the_deadline(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    """Issue 15: a server stalling mid-download held a response for 75 s. POP3 had only a
    per-read timeout, which a RETR answer trickled a line every 0.3 s (100 lines: 30 s)
    never reaches. Adding the account and reading it now each end within the deadline; the
    account and the list say the first sync has not finished, until a sync gets the mail."""
    dovecot.deliver(mail_user, [slow_message(100)])

    def trickle(line: bytes) -> bytes:
        if line.startswith(b"SLOW "):
            time.sleep(0.3)
        return line

    with FaultProxy((dovecot.host, dovecot.pop3_port)) as proxy:
        proxy.rewrite(trickle)
        started = time.monotonic()
        box = add_pop3(client, auth, dovecot, mail_user, proxy.port)  # its first sync is cut
        added = time.monotonic() - started
        started = time.monotonic()
        page = box.get("/messages")  # syncs first, and is cut again
        read = time.monotonic() - started
        assert added < DEADLINE + 5 and read < DEADLINE + 5, (added, read)
        assert (page["items"], page["sync_state"]) == ([], "initializing")
        account = box.get("")
        assert account["sync_progress"] == {"messages_stored": 0, "messages_on_server": 1}
        proxy.rewrite(None)
        page = box.get("/messages")
        assert ([m["subject"] for m in page["items"]], page["sync_state"]) == (["Slow"], "running")
