"""Mail events end to end: a real Dovecot, the gateway, the dispatcher and a real HTTP
receiver. New POP3 mail and changes made through the API arrive once each, signed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from mailgate.api.app import create_app
from mailgate.events.dispatcher import Dispatcher
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.servers import MailServer
from tests.helpers import account_body
from tests.mail_factory import dated, text_message
from tests.test_imap_mail import Mailbox
from tests.test_pop3 import add_pop3
from tests.test_webhooks import Receiver, receiver  # noqa: F401  (fixture)


@pytest.fixture
def events_gateway(tmp_path: Path, sqlite_url: str) -> Iterator[Gateway]:
    gw = Gateway.from_settings(make_settings(tmp_path, sqlite_url, allow_private_webhooks=True))
    upgrade(gw.engine)
    yield gw
    gw.close()


def verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:  # noqa: F811
    """Every body the receiver got, after checking its Standard Webhooks signature."""
    hook = Webhook(secret)
    bodies = []
    for request in receiver.requests:
        hook.verify(request.body, request.headers)
        bodies.append(json.loads(request.body))
    return bodies


def test_new_pop3_mail_and_api_changes_arrive_once_signed(
    events_gateway: Gateway,
    dovecot: DovecotServer,
    mail_user: MailUser,
    receiver: Receiver,  # noqa: F811
) -> None:
    gw = events_gateway
    auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'shop').key}"}
    dispatcher = Dispatcher(gw)
    with TestClient(create_app(gw)) as client:
        dovecot.deliver(mail_user, dated(2))  # already there: not announced as new
        box = add_pop3(client, auth, dovecot, mail_user)
        hook = client.post(
            "/v1/webhooks",
            json={
                "url": receiver.url,
                "events": ["message.created", "message.updated", "folder.created"],
            },
            headers=auth,
        )
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]

        dovecot.deliver(mail_user, [text_message("Order shipped", "Your parcel is on its way")])
        new = box.messages()[0]  # the read syncs; the new message is announced
        box.call("PATCH", f"/messages/{new['id']}", json={"seen": True})
        folder = box.call("POST", "/folders", json={"name": "Orders"}).json()
        while dispatcher.deliver_due():
            pass
        dispatcher.deliver_due()

    bodies = verified(receiver, secret)
    assert [b["type"] for b in bodies] == ["message.created", "message.updated", "folder.created"]
    created = bodies[0]["data"]
    assert created["account_id"] == box.account_id and created["id"] == new["id"]
    assert (
        created["subject"] == "Order shipped" and created["preview"] == "Your parcel is on its way"
    )
    assert bodies[1]["data"]["flags"]["seen"] is True
    assert bodies[2]["data"]["id"] == folder["id"]
    assert len(set(receiver.ids())) == len(receiver.ids()) == 3  # once each


def test_a_failing_account_raises_account_error_once_and_recovers(
    events_gateway: Gateway,
    dovecot: DovecotServer,
    mail_user: MailUser,
    receiver: Receiver,  # noqa: F811
) -> None:
    from mailgate.events.poller import MailPoller
    from tests.harness.proxy import FaultProxy

    gw = events_gateway
    auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'shop').key}"}
    poller = MailPoller(gw, interval=1)
    dispatcher = Dispatcher(gw)
    with (
        FaultProxy((dovecot.host, dovecot.pop3_port)) as proxy,
        TestClient(create_app(gw)) as client,
    ):
        box = add_pop3(client, auth, dovecot, mail_user, proxy.port)
        secret = client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["account.error"]}, headers=auth
        ).json()["secret"]
        proxy.answer_instead(b"USER", b"-ERR [AUTH] Authentication failed.\r\n")
        assert poller.run_once() == 0
        assert poller.run_once() == 0  # still failing: no second event
        account = client.get(box.base, headers=auth).json()
        assert (
            account["state"] == "auth_failed" and "Authentication failed" in account["state_detail"]
        )
        proxy.reset()
        assert poller.run_once() == 1
        assert client.get(box.base, headers=auth).json()["state"] == "connected"
        while dispatcher.deliver_due():
            pass
    poller.close()
    bodies = verified(receiver, secret)
    assert [b["type"] for b in bodies] == ["account.error"]
    assert (
        bodies[0]["data"]["state"] == "auth_failed"
        and bodies[0]["data"]["account_id"] == box.account_id
    )


def test_imap_changes_by_other_clients_become_events_once(
    events_gateway: Gateway,
    mail_server: MailServer,
    receiver: Receiver,  # noqa: F811
) -> None:
    """On each server of the matrix: new mail in INBOX and in another folder, and a flag
    set by another client, each one signed webhook; a restarted gateway replays nothing."""
    from mailgate.events.poller import MailPoller

    server, mail_user = mail_server, mail_server.add_user()
    other = server.imap_client(mail_user)
    if not other.folder_exists(server.folder_name("Archive")):  # plain Courier: INBOX only
        other.create_folder(server.folder_name("Archive"))
    other.logout()

    gw = events_gateway
    auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'shop').key}"}
    server.deliver(mail_user, dated(2))  # there before the account: not new mail
    with TestClient(create_app(gw)) as client:
        body = account_body("imap", server.imap_port, mail_user)
        account = client.post("/v1/accounts", json=body, headers=auth).json()
        events = ["message.created", "message.updated"]
        secret = client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": events}, headers=auth
        ).json()["secret"]
        poller = MailPoller(gw, interval=1)
        assert poller.run_once() == 1 and receiver.requests == []  # nothing happened yet

        uid = server.append(mail_user, text_message("Appended elsewhere", "Hello from Thunderbird"))
        server.append(mail_user, text_message("In the archive", "Filed"), folder="Archive")
        other = server.imap_client(mail_user)
        other.select_folder("INBOX")
        other.add_flags([1], [b"\\Flagged"])
        other.logout()
        poller.run_once()
        MailPoller(gw, interval=1).run_once()  # a restarted gateway replays nothing
        dispatcher = Dispatcher(gw)
        while dispatcher.deliver_due():
            pass
        poller.close()
        listed = {
            m["subject"]: m["id"]
            for m in Mailbox(client, auth, account["id"], mail_user, server).messages()
        }

    bodies = verified(receiver, secret)
    seen = sorted((b["type"], b["data"]["subject"]) for b in bodies)
    assert seen == [
        ("message.created", "Appended elsewhere"),
        ("message.created", "In the archive"),
        ("message.updated", "Message 0"),
    ]
    created = next(b["data"] for b in bodies if b["data"]["subject"] == "Appended elsewhere")
    assert created["id"] == listed["Appended elsewhere"] and uid > 0
    assert created["preview"] == "Hello from Thunderbird"
    flagged = next(b["data"] for b in bodies if b["type"] == "message.updated")
    assert flagged["flags"]["flagged"] is True
    assert len(set(receiver.ids())) == 3
