"""The IMAP watchers of `mailgate serve`, end to end: a real Dovecot, watcher threads, the
dispatcher and a real HTTP receiver. New INBOX mail is reported while the watcher idles
(the watch interval is set far longer than any wait here, so only IDLE can report it in
time); a Dovecot restart is survived; two gateway processes never report a change twice."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from mailgate.api.app import create_app
from mailgate.events.dispatcher import Dispatcher
from mailgate.events.watchers import ImapWatchers
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from mailgate.store.models import Account, WebhookEvent
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.servers import MailServer
from tests.helpers import account_body
from tests.mail_factory import text_message
from tests.test_events_e2e import verified
from tests.test_webhooks import Receiver, _make_due, receiver  # noqa: F401  (fixture)

NEVER = 3600.0  # a watch interval no test waits for: only IDLE can wake the watcher
PATIENCE = 30.0  # how long a test waits for something that normally takes a second


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture
def own_dovecot(tmp_path: Path) -> Iterator[DovecotServer]:
    """A Dovecot of this test's own, since the test restarts it."""
    with DovecotServer(tmp_path / "dovecot") as server:
        yield server


class Setup:
    def __init__(
        self,
        tmp_path: Path,
        url: str,
        server: MailServer,
        receiver: Receiver,  # noqa: F811
    ) -> None:
        self.settings = make_settings(tmp_path, url, allow_private_webhooks=True)
        self.gw = self.open_gateway()
        self.server, self.receiver = server, receiver
        self.user: MailUser = server.add_user()
        auth = {"Authorization": f"Bearer {issue_api_key(self.gw.engine, 'shop').key}"}
        with TestClient(create_app(self.gw)) as client:
            body = account_body("imap", server.imap_port, self.user)
            account = client.post("/v1/accounts", json=body, headers=auth)
            assert account.status_code == 201, account.text
            self.account_id = account.json()["id"]
            events = ["message.created", "message.deleted", "account.error", "folder.created"]
            hook = {"url": receiver.url, "events": events}
            self.secret = client.post("/v1/webhooks", json=hook, headers=auth).json()["secret"]

    def open_gateway(self) -> Gateway:
        gw = Gateway.from_settings(self.settings)
        upgrade(gw.engine)
        return gw

    def watchers(self, gw: Gateway | None = None, interval: float = NEVER) -> ImapWatchers:
        watchers = ImapWatchers(gw or self.gw, interval)
        watchers.reconcile()
        return watchers

    def subjects(self) -> list[str]:
        """The subjects of the new-mail webhooks received so far."""
        return [b["data"]["subject"] for b in self.bodies() if b["type"] == "message.created"]

    def bodies(self) -> list[dict[str, Any]]:
        Dispatcher(self.gw).deliver_due()
        return verified(self.receiver, self.secret)

    def account_state(self) -> str:
        with Session(self.gw.engine) as session:
            account = session.get(Account, self.account_id)
            assert account is not None
            return account.state


def idling(watchers: ImapWatchers) -> bool:
    return all(w.waiting.is_set() for _, w in watchers.running.values())


@pytest.fixture
def setup(
    tmp_path: Path,
    sqlite_url: str,
    own_dovecot: DovecotServer,
    receiver: Receiver,  # noqa: F811
) -> Iterator[Setup]:
    made = Setup(tmp_path, sqlite_url, own_dovecot, receiver)
    yield made
    made.gw.close()


@pytest.fixture
def matrix(
    tmp_path: Path,
    sqlite_url: str,
    mail_server: MailServer,
    receiver: Receiver,  # noqa: F811
) -> Iterator[Setup]:
    """A watched account on each server of the matrix (Dovecot, Cyrus, Courier)."""
    made = Setup(tmp_path, sqlite_url, mail_server, receiver)
    yield made
    made.gw.close()


def test_each_server_reports_inbox_at_once_and_other_folders_by_rounds(matrix: Setup) -> None:
    """INBOX by IDLE on every server; another folder by NOTIFY (Dovecot) or, where the server
    has none (Cyrus, Courier), by the clock rounds."""
    archive = matrix.server.folder_name("Archive")
    other = matrix.server.imap_client(matrix.user)
    if not other.folder_exists(archive):  # a plain Courier account has INBOX only
        other.create_folder(archive)
    other.logout()
    watchers = matrix.watchers(interval=0.5)
    try:
        eventually(lambda: idling(watchers), "the watcher to idle")
        matrix.server.append(matrix.user, text_message("To the inbox", "one"))
        assert eventually(matrix.subjects, "the INBOX webhook") == ["To the inbox"]
        matrix.server.append(matrix.user, text_message("Filed", "two"), folder="Archive")
        expected = ["To the inbox", "Filed"]
        eventually(lambda: matrix.subjects() == expected, "the Archive webhook")
    finally:
        watchers.close()


def test_new_mail_is_reported_while_idling_and_after_a_dovecot_restart(setup: Setup) -> None:
    watchers = setup.watchers()
    try:
        eventually(lambda: idling(watchers), "the watcher to idle")
        setup.server.append(setup.user, text_message("While idling", "one"))
        assert eventually(setup.subjects, "the first webhook") == ["While idling"]

        (watcher,) = [w for _, w in watchers.running.values()]
        setup.server.restart()  # the idling connection is cut
        setup.server.append(setup.user, text_message("While reconnecting", "two"))
        eventually(lambda: watcher.connections == 2, "the watcher to reconnect")
        eventually(lambda: idling(watchers), "the watcher to idle again")
        setup.server.append(setup.user, text_message("After the restart", "three"))
        expected = ["While idling", "While reconnecting", "After the restart"]
        eventually(lambda: setup.subjects() == expected, "all three webhooks")
    finally:
        watchers.close()
    ids = setup.receiver.ids()  # (an account.error may come too, if the restart was slow)
    assert len(set(ids)) == len(ids)


def test_notify_reports_other_folders_while_idling(setup: Setup) -> None:
    """Dovecot offers NOTIFY: mail filed into another folder, a folder made elsewhere, wake
    the idling watcher at once (its clock rounds are an hour away here)."""
    watchers = setup.watchers()
    try:
        eventually(lambda: idling(watchers), "the watcher to idle")
        assert all(w.notify for _, w in watchers.running.values())
        setup.server.append(setup.user, text_message("Filed", "by a rule"), folder="Archive")
        assert eventually(setup.subjects, "the webhook") == ["Filed"]
        other = setup.server.imap_client(setup.user)
        other.create_folder("Projects")
        other.logout()
        eventually(lambda: any(b["type"] == "folder.created" for b in setup.bodies()), "folder")
    finally:
        watchers.close()


def test_two_gateway_processes_report_each_change_once(matrix: Setup) -> None:
    setup = matrix
    first = setup.watchers()
    second_gateway = setup.open_gateway()  # another `mailgate serve` on the same database
    second = setup.watchers(second_gateway)
    try:
        eventually(lambda: idling(first) or idling(second), "one of them to idle")
        for n in range(3):
            setup.server.append(setup.user, text_message(f"Mail {n}", "x"))
        eventually(lambda: len(setup.subjects()) >= 3, "three webhooks")
        time.sleep(1)  # room for a duplicate to show up, were there one
        assert sorted(setup.subjects()) == ["Mail 0", "Mail 1", "Mail 2"]
        watchers = [w for ws in (first, second) for _, w in ws.running.values()]
        assert len([w for w in watchers if w.waiting.is_set()]) == 1  # exactly one of them watches
    finally:
        first.close()
        second.close()
        second_gateway.close()


def test_mail_that_came_while_stopped_is_reported_once_after_restart(setup: Setup) -> None:
    setup.receiver.stop()  # the receiver is down too
    watchers = setup.watchers()
    eventually(lambda: idling(watchers), "the watcher to idle")
    setup.server.append(setup.user, text_message("Before the stop", "a"))
    dispatcher = Dispatcher(setup.gw)
    eventually(lambda: dispatcher.deliver_due() == 0 and _queued(setup.gw) == 1, "one event")
    watchers.close()
    setup.gw.close()

    setup.server.append(setup.user, text_message("While stopped", "b"))  # nobody watching
    setup.gw = setup.open_gateway()  # the gateway starts again, the receiver comes back
    setup.receiver.start()
    watchers = setup.watchers()
    try:
        eventually(lambda: idling(watchers), "the restarted watcher to idle")
        _make_due(setup.gw)
        eventually(lambda: len(setup.subjects()) == 2, "both webhooks")
    finally:
        watchers.close()
    time.sleep(0.5)
    assert setup.subjects() == ["Before the stop", "While stopped"]
    assert len(set(setup.receiver.ids())) == len(setup.receiver.ids()) == 2


def _queued(gw: Gateway) -> int:
    with Session(gw.engine) as session:
        return len(session.exec(select(WebhookEvent)).all())


def test_servers_without_idle_are_polled(
    tmp_path: Path,
    sqlite_url: str,
    receiver: Receiver,  # noqa: F811
) -> None:
    capabilities = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE NAMESPACE"
    with DovecotServer(tmp_path / "no-idle", capabilities) as server:
        setup = Setup(tmp_path, sqlite_url, server, receiver)
        watchers = setup.watchers(interval=0.5)
        try:
            eventually(lambda: idling(watchers), "the watcher to wait")
            server.append(setup.user, text_message("Polled", "no IDLE here"))
            assert eventually(setup.subjects, "the webhook") == ["Polled"]
        finally:
            watchers.close()
            setup.gw.close()


def test_serve_watches_imap_accounts(
    tmp_path: Path,
    sqlite_url: str,
    own_dovecot: DovecotServer,
    receiver: Receiver,  # noqa: F811
) -> None:
    """The app's lifespan (what `mailgate serve` runs) starts a watcher for an IMAP account
    added while it runs, and the dispatcher sends what it finds."""
    setup = Setup(tmp_path, sqlite_url, own_dovecot, receiver)
    try:
        with TestClient(create_app(setup.gw, background=True)):
            setup.server.append(setup.user, text_message("Seen by serve", "hi"))
            deadline = time.monotonic() + PATIENCE
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.05)
        bodies = verified(receiver, setup.secret)
        assert [b["data"]["subject"] for b in bodies] == ["Seen by serve"]
    finally:
        setup.gw.close()


def test_a_mailbox_that_stays_down_is_an_account_error_once(setup: Setup) -> None:
    watchers = setup.watchers()
    try:
        eventually(lambda: idling(watchers), "the watcher to idle")
        setup.server.stop()
        errors = eventually(setup.bodies, "the account.error webhook")
        assert [b["type"] for b in errors] == ["account.error"]
        assert errors[0]["data"]["state"] == "unreachable"
        assert setup.account_state() == "unreachable"

        setup.server.start()
        eventually(lambda: setup.account_state() == "connected", "the account to recover")
        setup.server.append(setup.user, text_message("Back again", "x"))
        eventually(lambda: len(setup.bodies()) == 2, "the new mail")
    finally:
        watchers.close()
    assert [b["type"] for b in setup.bodies()] == ["account.error", "message.created"]


def test_after_a_long_outage_the_watcher_is_back_as_soon_as_the_server(setup: Setup) -> None:
    """An outage long enough for the reconnect backoff to have grown (here: eight failures,
    a wait of up to 256 s): the watcher probes the server every second and reconnects the
    moment it accepts again, not when its backoff ends (issue 15: new mail reached webhooks
    5.4 s and 30.1 s after a 20 s outage)."""
    watchers = setup.watchers()
    try:
        eventually(lambda: idling(watchers), "the watcher to idle")
        (watcher,) = [w for _, w in watchers.running.values()]
        setup.server.stop()
        eventually(lambda: watcher.failures >= 1, "the watcher to notice")
        watcher.failures = 8  # as after a long outage: the next wait is up to 256 s
        eventually(lambda: watcher.failures >= 9, "the next attempt to fail")
        setup.server.start()
        eventually(lambda: watcher.connections == 2, "the watcher to reconnect")
        setup.server.append(setup.user, text_message("Back at once", "x"))
        eventually(lambda: "Back at once" in setup.subjects(), "the new mail")
    finally:
        watchers.close()
