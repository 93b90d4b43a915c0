"""POP3 servers that say "not now", and what each real server does.

* A maildrop locked by another session: RFC 2449 section 8.1.2 ``-ERR [IN-USE]``, answered
  to a login (Mailgate logs in with USER/PASS; APOP and AUTH it does not send) or to a later
  command; RFC 3206 section 4 ``-ERR [SYS/TEMP]``. A
  sync waits and tries again a few times within seconds, then ends the round with
  ``MailboxBusy`` (not an auth failure, not unreachable); the account is not marked broken and
  the next round tries again. A real lock comes from Dovecot with ``pop3_lock_session = yes``
  (a second session waits up to 10 s for the lock, then answers ``-ERR [IN-USE] Mailbox is
  locked by another POP3 session.``); Dovecot's default, Cyrus and Courier let two sessions
  share a maildrop (checked below). Other codes at other commands come from the fault proxy
  answering for the server.
* A wrong password is a refused login on every server, however long the server takes to
  say so (Courier answers after 5 s).
"""

from __future__ import annotations

import poplib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from mailgate.adapters.pop3 import respcodes
from mailgate.adapters.pop3.adapter import Pop3Adapter
from mailgate.adapters.pop3.respcodes import MailboxBusy, busy_error, response_code
from mailgate.domain.errors import MailboxAuthFailed, MailboxUnreachable
from mailgate.events.poller import MailPoller
from mailgate.gateway.context import Gateway
from mailgate.store.migrate import upgrade
from mailgate.store.models import Account, WebhookEvent
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.proxy import FaultProxy
from tests.harness.servers import MailServer
from tests.helpers import account_body, assert_problem
from tests.mail_factory import dated
from tests.test_imap_mail import Mailbox
from tests.test_pop3 import add_pop3, on_server, stored_rows


@pytest.fixture
def gateway(tmp_path: Path, sqlite_url: str) -> Iterator[Gateway]:
    """On SQLite; webhooks may name loopback (one is made only to see events queued)."""
    gw = Gateway.from_settings(make_settings(tmp_path, sqlite_url, allow_private_webhooks=True))
    upgrade(gw.engine)
    yield gw
    gw.close()


class LockingDovecot(DovecotServer):
    """Dovecot with ``pop3_lock_session = yes``: one POP3 session per maildrop at a time."""

    def _write_config(self) -> Path:
        run = super()._write_config()
        text = self.config_file.read_text()
        assert "protocol pop3 {" in text
        self.config_file.write_text(
            text.replace("protocol pop3 {", "protocol pop3 {\n  pop3_lock_session = yes", 1)
        )
        return run


@pytest.fixture(scope="module")
def locking_dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    server = LockingDovecot(tmp_path_factory.mktemp("locking-dovecot"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[FaultProxy]:
    with FaultProxy((dovecot.host, dovecot.pop3_port)) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> tuple[float, ...]:
    """The same schedule, shorter, where a test waits out every retry."""
    delays = (0.05, 0.1, 0.2)
    monkeypatch.setattr(respcodes, "BUSY_DELAYS", delays)
    return delays


def logged_in(server: MailServer, user: MailUser) -> poplib.POP3:
    """Another client's session, in TRANSACTION state (holding the lock where there is one)."""
    pop = poplib.POP3(server.host, server.pop3_port, timeout=30)
    pop.user(user.username)
    pop.pass_(user.password)
    pop.stat()
    return pop


def answering(
    command: bytes, reply: bytes, times: int | None = None
) -> tuple[Callable[[bytes], bytes | None], list[int]]:
    """A proxy answer: ``reply`` to the first ``times`` commands starting with ``command``
    (all, when None); the list counts them."""
    seen = [0]

    def answer(data: bytes) -> bytes | None:
        if not data.upper().startswith(command):
            return None
        seen[0] += 1
        return reply if times is None or seen[0] <= times else None

    return answer, seen


def account_row(gateway: Gateway, account_id: str) -> Account:
    with Session(gateway.engine) as session:
        account = session.get(Account, account_id)
        assert account is not None
        session.expunge(account)
        return account


def pop3_adapter(gateway: Gateway, account_id: str) -> Pop3Adapter:
    adapter = gateway.mailboxes.adapter(account_row(gateway, account_id))
    assert isinstance(adapter, Pop3Adapter)
    return adapter


def account_errors(gateway: Gateway) -> int:
    with Session(gateway.engine) as session:
        return len(
            session.exec(
                select(WebhookEvent).where(col(WebhookEvent.type) == "account.error")
            ).all()
        )


def watch_account_errors(client: TestClient, auth: dict[str, str]) -> None:
    """An endpoint for account.error, so one would be queued (nothing delivers it here)."""
    body = {"url": "http://127.0.0.1:9/mail", "events": ["account.error"]}
    assert client.post("/v1/webhooks", json=body, headers=auth).status_code == 201


def background_round(gateway: Gateway, box: Mailbox) -> bool:
    """One round of the POP3 poller for the account, as `mailgate serve` runs it."""
    poller = MailPoller(gateway, interval=60, kept_state_only=True)
    try:
        return poller.sync_one(account_row(gateway, box.account_id))
    finally:
        poller.close()


def state_of(box: Mailbox) -> str:
    response = box.client.get(box.base, headers=box.auth)
    assert response.status_code == 200, response.text
    return str(response.json()["state"])


# -- response codes (RFC 2449 section 8, RFC 3206) ------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "busy", "retried"),
    [
        (b"-ERR [IN-USE] Mailbox is locked by another POP3 session.", "IN-USE", True, True),
        (b"-ERR [in-use] lower case", "IN-USE", True, True),
        (b"-ERR [SYS/TEMP] Couldn't sync mailbox.", "SYS/TEMP", True, True),
        (b"-ERR [LOGIN-DELAY] wait 10 s", "LOGIN-DELAY", True, False),
        (b"-ERR [SYS/PERM] Your account is disabled", "SYS/PERM", False, False),
        (b"-ERR [AUTH] Authentication failed.", "AUTH", False, False),
        (b"-ERR Login failed.", None, False, False),
        (b"-ERR Unable to lock [IN-USE]", None, False, False),  # a code only leads the text
    ],
)
def test_response_codes(line: bytes, code: str | None, busy: bool, retried: bool) -> None:
    exc = poplib.error_proto(line)
    assert response_code(exc) == code
    found = busy_error(exc)
    assert (found is not None) == busy
    if found is not None:
        assert respcodes.retried(found) == retried and found.code == code
        assert not isinstance(found, MailboxAuthFailed | MailboxUnreachable)


def test_the_retries_fit_in_ten_seconds() -> None:
    assert len(respcodes.BUSY_DELAYS) >= 2 and sum(respcodes.BUSY_DELAYS) * 1.2 <= 10
    assert respcodes.BUSY_BUDGET <= 10


# -- what each real server does -------------------------------------------------------------


def test_a_sync_while_another_client_is_logged_in(
    client: TestClient,
    auth: dict[str, str],
    gateway: Gateway,
    mail_server: MailServer,
) -> None:
    """Dovecot (by default), Cyrus and Courier let a second session into a maildrop that
    another client has open: the sync runs while the phone stays logged in (it leaves only
    after the round, so a server that locked would fail the round)."""
    user = mail_server.add_user()
    box = add_pop3(client, auth, mail_server, user)
    mail_server.deliver(user, dated(2))
    phone = logged_in(mail_server, user)
    try:
        assert background_round(gateway, box)
    finally:
        phone.quit()
    assert stored_rows(gateway) == 2 and state_of(box) == "connected"


def test_a_wrong_password_is_a_refused_login_on_every_server(
    client: TestClient, auth: dict[str, str], mail_server: MailServer
) -> None:
    """Courier answers a wrong password after 5 s, longer than the connect timeout (2 s in
    the tests): the login waits for the answer rather than report a timeout."""
    user = mail_server.add_user()
    body = account_body("pop3", mail_server.pop3_port, user, password="not-the-password")
    assert_problem(client.post("/v1/accounts", json=body, headers=auth), 422, "mailbox-auth-failed")


# -- a real lock: Dovecot with pop3_lock_session ---------------------------------------------


def test_a_sync_waits_for_a_lock_another_session_releases(
    client: TestClient,
    auth: dict[str, str],
    gateway: Gateway,
    locking_dovecot: DovecotServer,
) -> None:
    """The phone holds the maildrop for 3 s (longer than the 2 s connect timeout): Dovecot
    holds our PASS until the lock is free, and the sync goes on."""
    user = locking_dovecot.add_user()
    box = add_pop3(client, auth, locking_dovecot, user)
    locking_dovecot.deliver(user, dated(2))
    phone = logged_in(locking_dovecot, user)
    threading.Timer(3.0, phone.quit).start()
    started = time.monotonic()
    assert background_round(gateway, box)
    assert time.monotonic() - started >= 3.0  # it waited for the lock (no upper bound: CI)
    assert stored_rows(gateway) == 2 and state_of(box) == "connected"


def test_a_lock_held_past_the_wait_ends_the_round_and_the_next_round_syncs(
    client: TestClient,
    auth: dict[str, str],
    gateway: Gateway,
    locking_dovecot: DovecotServer,
) -> None:
    """Dovecot waits 10 s for its lock, then answers -ERR [IN-USE]: the round ends there (one
    attempt: Dovecot's wait was the wait), the account stays connected with no
    account.error, and the next round, after the phone let go, downloads the mail. The
    attempts are counted as connections through a plain proxy, not timed."""
    watch_account_errors(client, auth)
    user = locking_dovecot.add_user()
    with FaultProxy((locking_dovecot.host, locking_dovecot.pop3_port)) as counting:
        box = add_pop3(client, auth, locking_dovecot, user, counting.port)
        locking_dovecot.deliver(user, dated(2))
        phone = logged_in(locking_dovecot, user)
        try:
            before = counting.connections
            background_round(gateway, box)
            assert counting.connections == before + 1  # one attempt, not a retry
        finally:
            phone.quit()
        assert stored_rows(gateway) == 0
        assert state_of(box) == "connected" and account_errors(gateway) == 0
        assert background_round(gateway, box)
        assert stored_rows(gateway) == 2 and len(on_server(locking_dovecot, user)) == 2


# -- codes answered by the proxy for the server ---------------------------------------------


@pytest.mark.parametrize("command", [b"USER", b"PASS"])
def test_in_use_at_login_is_waited_for(
    client: TestClient,
    auth: dict[str, str],
    gateway: Gateway,
    dovecot: DovecotServer,
    mail_user: MailUser,
    proxy: FaultProxy,
    quick_retries: tuple[float, ...],
    command: bytes,
) -> None:
    """-ERR [IN-USE] to USER or PASS twice (RFC 2449 section 8.1.2: "the authentication was
    successful, but the user's maildrop is currently in use"), then the lock is free: adding
    the account waits it out, and so does a later sync."""
    reply = b"-ERR [IN-USE] Mailbox is locked.\r\n"
    answer, seen = answering(command, reply, times=2)
    proxy.answer_instead(answer)
    box = add_pop3(client, auth, dovecot, mail_user, proxy.port)
    assert seen[0] == 4  # two refusals, the login of verify, the first sync's
    dovecot.deliver(mail_user, dated(3))
    answer, seen = answering(command, reply, times=2)
    proxy.answer_instead(answer)
    result = pop3_adapter(gateway, box.account_id).sync()
    assert result.downloaded == 3 and seen[0] == 3
    assert state_of(box) == "connected"


@pytest.mark.parametrize("command", [b"UIDL", b"RETR", b"DELE", b"QUIT"])
def test_sys_temp_at_a_later_command_is_retried(
    client: TestClient,
    auth: dict[str, str],
    gateway: Gateway,
    dovecot: DovecotServer,
    mail_user: MailUser,
    proxy: FaultProxy,
    command: bytes,
) -> None:
    """-ERR [SYS/TEMP] (RFC 3206) in the middle of a session: the session ends without QUIT
    (no DELE applies), the whole sync is tried again, and nothing is lost or doubled."""
    box = add_pop3(client, auth, dovecot, mail_user, proxy.port, pop3={"leave_on_server": False})
    dovecot.deliver(mail_user, dated(3))
    answer, seen = answering(command, b"-ERR [SYS/TEMP] Try again later.\r\n", times=1)
    proxy.answer_instead(answer)
    result = pop3_adapter(gateway, box.account_id).sync()
    assert seen[0] >= 2  # refused once, then done
    assert result.downloaded == 3 and stored_rows(gateway) == 3
    assert on_server(dovecot, mail_user) == []
    assert [m["subject"] for m in box.messages()] == ["Message 2", "Message 1", "Message 0"]


def test_a_lock_that_stays_ends_the_round_with_mailbox_busy(
    client: TestClient,
    auth: dict[str, str],
    gateway: Gateway,
    dovecot: DovecotServer,
    mail_user: MailUser,
    proxy: FaultProxy,
    quick_retries: tuple[float, ...],
) -> None:
    watch_account_errors(client, auth)
    box = add_pop3(client, auth, dovecot, mail_user, proxy.port)
    dovecot.deliver(mail_user, dated(2))
    answer, seen = answering(b"PASS", b"-ERR [IN-USE] Mailbox is locked.\r\n")
    proxy.answer_instead(answer)
    adapter = pop3_adapter(gateway, box.account_id)
    started = time.monotonic()
    with pytest.raises(MailboxBusy) as raised:
        adapter.sync()
    assert time.monotonic() - started >= sum(quick_retries) * 0.8
    assert seen[0] == len(quick_retries) + 1
    assert not isinstance(raised.value, MailboxAuthFailed | MailboxUnreachable)
    assert raised.value.code == "IN-USE" and "locked" in raised.value.detail
    assert "4 attempts" in raised.value.detail

    seen[0] = 0
    background_round(gateway, box)  # the poller's round: the same attempts, then it ends
    assert seen[0] == len(quick_retries) + 1
    assert state_of(box) == "connected" and account_errors(gateway) == 0
    seen[0] = 0
    assert box.get("/messages")["items"] == []  # a read tries once, without waiting,
    assert seen[0] == 1  # and serves the store
    proxy.reset()
    assert background_round(gateway, box)
    assert stored_rows(gateway) == 2


@pytest.mark.parametrize(
    ("reply", "status", "problem"),
    [
        (b"-ERR [IN-USE] Mailbox is locked.\r\n", 503, "mailbox-busy"),
        (b"-ERR [SYS/TEMP] Try again later.\r\n", 503, "mailbox-busy"),
        (b"-ERR [SYS/PERM] Account disabled.\r\n", 502, "mailbox-error"),
        (b"-ERR [AUTH] Authentication failed.\r\n", 422, "mailbox-auth-failed"),
    ],
)
def test_adding_an_account_the_server_will_not_open_now(
    client: TestClient,
    auth: dict[str, str],
    mail_user: MailUser,
    proxy: FaultProxy,
    quick_retries: tuple[float, ...],
    reply: bytes,
    status: int,
    problem: str,
) -> None:
    """Only a refused login is reported as one; a locked maildrop or a server fault is not
    the user's password."""
    proxy.answer_instead(b"PASS", reply)
    body = account_body("pop3", proxy.port, mail_user)
    found = assert_problem(client.post("/v1/accounts", json=body, headers=auth), status, problem)
    assert reply[5:-2].decode().split("] ")[1] in str(found["detail"])
    assert client.get("/v1/accounts", headers=auth).json() == {"items": []}


def test_a_sync_never_sends_top(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
    proxy: FaultProxy,
) -> None:
    """TOP is optional (RFC 1939 section 7): every command a sync sends is one every server
    must have (or CAPA, UIDL, which it asks for)."""
    sent: list[bytes] = []

    def record(data: bytes) -> bytes | None:
        sent.append(data)
        return None

    proxy.answer_instead(record)
    dovecot.deliver(mail_user, dated(3))
    box = add_pop3(client, auth, dovecot, mail_user, proxy.port, pop3={"leave_on_server": False})
    box.messages()
    verbs = {line.split(b" ")[0].upper() for line in b"".join(sent).split(b"\r\n") if line}
    assert verbs <= {b"CAPA", b"USER", b"PASS", b"UIDL", b"RETR", b"DELE", b"QUIT"}
    assert {b"UIDL", b"RETR", b"DELE", b"QUIT"} <= verbs
