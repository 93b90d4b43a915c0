"""/v1/webhooks and the dispatcher, against a real HTTP receiver on loopback (no mocks),
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from standardwebhooks.webhooks import Webhook

from mailgate.api.app import create_app
from mailgate.domain.errors import InvalidRequest
from mailgate.domain.ids import new_id
from mailgate.domain.webhooks import EVENT_TYPES
from mailgate.events.dispatcher import BODY_LIMIT, USER_AGENT, Dispatcher, backoff
from mailgate.gateway import webhooks
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.db import session_scope
from mailgate.store.migrate import upgrade
from mailgate.store.models import Account, WebhookEndpoint, WebhookEvent, utcnow
from tests.conftest import make_settings
from tests.helpers import Names, assert_problem

# --- a real receiver --------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST. ``fail`` answers 500
    that many times, ``hang`` sleeps that long before answering, ``stop()`` takes it down
    (connections refused) and ``start()`` brings it back on the same port."""

    port: int = 0
    answer: bytes = b'{"ok":true}'
    fail: int = 0
    hang: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    hang, failing = receiver.hang, receiver.fail > 0
                    if failing:
                        receiver.fail -= 1
                if hang:
                    time.sleep(hang)
                answer = b"oops" if failing else receiver.answer
                try:
                    self.send_response(500 if failing else 200)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the dispatcher gave up waiting

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/mail"

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers["webhook-id"] for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


# --- a gateway that allows loopback webhooks --------------------------------------------------


@dataclass
class Tenant:
    id: str
    auth: dict[str, str]
    account_id: str


@pytest.fixture
def pgw(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    gw = Gateway.from_settings(make_settings(tmp_path, database_url, allow_private_webhooks=True))
    upgrade(gw.engine)
    yield gw
    gw.close()


@pytest.fixture
def pclient(pgw: Gateway) -> Iterator[TestClient]:
    with TestClient(create_app(pgw), raise_server_exceptions=False) as test_client:
        yield test_client


def _tenant(gw: Gateway, name: str) -> Tenant:
    issued = issue_api_key(gw.engine, name)
    account = Account(
        id=new_id("acc"),
        tenant_id=issued.tenant_id,
        protocol="imap",
        host="mail.example.com",
        port=993,
        security="tls",
        username=f"{name}@example.com",
        password_encrypted=gw.passwords.encrypt("x"),
    )
    with session_scope(gw.engine) as session:
        session.add(account)
    return Tenant(issued.tenant_id, {"Authorization": f"Bearer {issued.key}"}, account.id)


@pytest.fixture
def tenant_a(pgw: Gateway) -> Tenant:
    return _tenant(pgw, "tenant-a")


@pytest.fixture
def tenant_b(pgw: Gateway) -> Tenant:
    return _tenant(pgw, "tenant-b")


@pytest.fixture
def dispatchers() -> Iterator[list[Dispatcher]]:
    """Dispatchers made by a test, closed afterwards."""
    made: list[Dispatcher] = []
    yield made
    for dispatcher in made:
        dispatcher.close()


def _dispatcher(made: list[Dispatcher], gw: Gateway, **options: Any) -> Dispatcher:
    options.setdefault("timeout", 2.0)
    dispatcher = Dispatcher(gw, **options)
    made.append(dispatcher)
    return dispatcher


def _create(client: TestClient, tenant: Tenant, url: str, **body: Any) -> dict[str, Any]:
    body.setdefault("events", ["message.created"])
    response = client.post("/v1/webhooks", json={"url": url, **body}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _enqueue(
    gw: Gateway, tenant: Tenant, event_type: str = "message.created", **data: Any
) -> list[str]:
    with session_scope(gw.engine) as session:
        return webhooks.enqueue(session, tenant.id, tenant.account_id, event_type, data)


def _make_due(gw: Gateway) -> None:
    """Pull every pending retry forward instead of sleeping through the backoff."""
    with session_scope(gw.engine) as session:
        session.exec(
            sa.update(WebhookEvent)
            .where(col(WebhookEvent.status) == "pending")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def _event(gw: Gateway, event_id: str) -> WebhookEvent:
    with Session(gw.engine) as session:
        event = session.get(WebhookEvent, event_id)
        assert event is not None
        return event


def _deliveries(client: TestClient, tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# --- endpoints: CRUD, isolation, validation ----------------------------------------------------


def test_create_read_update_delete(
    pclient: TestClient, tenant_a: Tenant, receiver: Receiver
) -> None:
    created = _create(
        pclient,
        tenant_a,
        receiver.url,
        events=["message.created", "folder.deleted"],
        account_ids=[tenant_a.account_id],
        description="CRM sync",
    )
    assert created["id"].startswith("whk_")
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"][6:])) == 32
    assert created["events"] == ["message.created", "folder.deleted"]
    assert created["account_ids"] == [tenant_a.account_id]
    assert created["enabled"] is True and created["disabled_reason"] is None
    webhook_id = created["id"]

    shown = pclient.get(f"/v1/webhooks/{webhook_id}", headers=tenant_a.auth).json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    listed = pclient.get("/v1/webhooks", headers=tenant_a.auth).json()
    assert listed == {"items": [shown]}
    secret = pclient.get(f"/v1/webhooks/{webhook_id}/secret", headers=tenant_a.auth).json()
    assert secret == {"secret": created["secret"]}

    changed = pclient.patch(
        f"/v1/webhooks/{webhook_id}",
        json={"events": ["account.error"], "account_ids": None, "description": None},
        headers=tenant_a.auth,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["events"] == ["account.error"]
    assert body["account_ids"] is None and body["description"] is None
    assert body["url"] == receiver.url and "secret" not in body

    given = "whsec_" + base64.b64encode(b"k" * 24).decode()
    pclient.patch(f"/v1/webhooks/{webhook_id}", json={"secret": given}, headers=tenant_a.auth)
    rotated = pclient.get(f"/v1/webhooks/{webhook_id}/secret", headers=tenant_a.auth).json()
    assert rotated == {"secret": given}

    assert pclient.delete(f"/v1/webhooks/{webhook_id}", headers=tenant_a.auth).status_code == 204
    assert_problem(
        pclient.get(f"/v1/webhooks/{webhook_id}", headers=tenant_a.auth), 404, "not-found"
    )
    assert pclient.get("/v1/webhooks", headers=tenant_a.auth).json() == {"items": []}


def test_given_secret_is_kept(pclient: TestClient, tenant_a: Tenant, receiver: Receiver) -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(40))).decode()
    created = _create(pclient, tenant_a, receiver.url, secret=secret)
    assert created["secret"] == secret


def test_another_tenants_webhook_is_not_found(
    pclient: TestClient, tenant_a: Tenant, tenant_b: Tenant, receiver: Receiver
) -> None:
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    other = tenant_b.auth
    base = f"/v1/webhooks/{webhook_id}"
    assert_problem(pclient.get(base, headers=other), 404, "not-found")
    assert_problem(pclient.get(f"{base}/secret", headers=other), 404, "not-found")
    assert_problem(pclient.get(f"{base}/deliveries", headers=other), 404, "not-found")
    assert_problem(pclient.patch(base, json={"enabled": False}, headers=other), 404, "not-found")
    assert_problem(pclient.delete(base, headers=other), 404, "not-found")
    assert pclient.get("/v1/webhooks", headers=other).json() == {"items": []}
    assert_problem(pclient.get("/v1/webhooks/whk_nonsense", headers=other), 404, "not-found")
    assert pclient.get(base, headers=tenant_a.auth).status_code == 200  # untouched
    assert_problem(pclient.get("/v1/webhooks"), 401, "unauthorized")


@pytest.mark.parametrize(
    "change",
    [
        {"url": "ftp://127.0.0.1/hook"},
        {"url": "http://user:pass@127.0.0.1/hook"},
        {"url": "http:///no-host"},
        {"url": "http://127.0.0.1:99999/"},
        {"url": "http://127.0.0.1/ spaced"},
        {"events": ["message.exploded"]},
        {"events": []},
        {"events": ["message.created", "message.created"]},
        {"events": ["mail.*"]},
        {"events": ["message*"]},
        {"secret": "not-a-secret"},
        {"secret": "whsec_" + base64.b64encode(b"short").decode()},
        {"secret": "whsec_" + base64.b64encode(b"x" * 65).decode()},
        {"secret": "whsec_***not base64***"},
        {"account_ids": []},
        {"colour": "blue"},
    ],
)
def test_invalid_webhooks_are_refused(
    pclient: TestClient, tenant_a: Tenant, receiver: Receiver, change: dict[str, Any]
) -> None:
    body = {"url": receiver.url, "events": ["message.created"], **change}
    assert_problem(
        pclient.post("/v1/webhooks", json=body, headers=tenant_a.auth), 422, "validation-error"
    )
    assert pclient.get("/v1/webhooks", headers=tenant_a.auth).json() == {"items": []}


@pytest.mark.parametrize(
    ("asked", "subscribed"),
    [
        (["folder.*"], ["folder.created", "folder.updated", "folder.deleted"]),
        (
            ["account.error", "message.*", "message.deleted"],
            [
                "account.error",
                "message.created",
                "message.updated",
                "message.deleted",
                "message.sent",
                "message.failed",
            ],
        ),
        (["*"], list(EVENT_TYPES)),
    ],
)
def test_wildcards_subscribe_to_a_kind_or_everything(
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    asked: list[str],
    subscribed: list[str],
) -> None:
    hook = _create(pclient, tenant_a, receiver.url, events=asked)
    assert hook["events"] == subscribed
    changed = pclient.patch(
        f"/v1/webhooks/{hook['id']}", json={"events": ["folder.*"]}, headers=tenant_a.auth
    )
    assert changed.json()["events"] == ["folder.created", "folder.updated", "folder.deleted"]
    assert _enqueue(pclient.app.state.gateway, tenant_a, "folder.deleted")  # delivered to it
    assert not _enqueue(pclient.app.state.gateway, tenant_a, "message.created")


def test_account_ids_must_be_the_tenants(
    pclient: TestClient, tenant_a: Tenant, tenant_b: Tenant, receiver: Receiver
) -> None:
    body = {"url": receiver.url, "events": ["message.created"]}
    for ids in ([tenant_b.account_id], [tenant_a.account_id, "acc_unknown"]):
        answer = pclient.post(
            "/v1/webhooks", json={**body, "account_ids": ids}, headers=tenant_a.auth
        )
        problem = assert_problem(answer, 422, "validation-error")
        assert "no such account" in str(problem["detail"])
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    answer = pclient.patch(
        f"/v1/webhooks/{webhook_id}",
        json={"account_ids": [tenant_b.account_id]},
        headers=tenant_a.auth,
    )
    assert_problem(answer, 422, "validation-error")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://[fd00::1]/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[2002:7f00:1::1]/hook", "loopback"),  # 6to4 for 127.0.0.1
        ("http://[2002:a01:203::1]/hook", "private"),  # 6to4 for 10.1.2.3
        ("http://[fec0::1]/hook", "site-local"),
        ("http://[2001:0:4136:e378:8000:63bf:f5fe:fcfe]/hook", "private"),  # Teredo, 10.1.3.1
        ("http://100.64.0.1/hook", "not a public address"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_non_public_targets_are_refused_by_default(
    client: TestClient, auth: dict[str, str], url: str, words: str
) -> None:
    body = {"url": url, "events": ["message.created"]}
    problem = assert_problem(
        client.post("/v1/webhooks", json=body, headers=auth), 422, "validation-error"
    )
    assert words in str(problem["detail"])


def test_public_address_passes_the_guard() -> None:
    webhooks.check_webhook_url("https://8.8.8.8/hook", allow_private=False)
    webhooks.check_webhook_url("http://[2001:4860:4860::8888]:8080/x", allow_private=False)
    webhooks.check_webhook_url("http://10.0.0.1/hook", allow_private=True)
    with pytest.raises(InvalidRequest, match="credentials"):
        webhooks.check_webhook_url("https://u:p@8.8.8.8/", allow_private=True)
    with pytest.raises(InvalidRequest, match="http"):
        webhooks.check_webhook_url("gopher://8.8.8.8/", allow_private=True)


# --- the outbox ---------------------------------------------------------------------------------


def test_enqueue_matches_event_types_accounts_and_enabled(
    pgw: Gateway, pclient: TestClient, tenant_a: Tenant, tenant_b: Tenant, receiver: Receiver
) -> None:
    every = _create(pclient, tenant_a, receiver.url)["id"]
    scoped = _create(pclient, tenant_a, receiver.url, account_ids=[tenant_a.account_id])["id"]
    folders = _create(pclient, tenant_a, receiver.url, events=["folder.created"])["id"]
    paused = _create(pclient, tenant_a, receiver.url)["id"]
    pclient.patch(f"/v1/webhooks/{paused}", json={"enabled": False}, headers=tenant_a.auth)
    _create(pclient, tenant_b, receiver.url)

    ids = _enqueue(pgw, tenant_a, id="msg_1", subject="Hi")
    assert len(ids) == 2 and all(i.startswith("evt_") for i in ids)
    assert {_event(pgw, i).endpoint_id for i in ids} == {every, scoped}
    with session_scope(pgw.engine) as session:  # another account of the tenant
        other = webhooks.enqueue(session, tenant_a.id, "acc_other", "message.created", {})
    assert {_event(pgw, i).endpoint_id for i in other} == {every}
    assert {_event(pgw, i).endpoint_id for i in _enqueue(pgw, tenant_a, "folder.created")} == {
        folders
    }
    assert _enqueue(pgw, tenant_a, "message.deleted") == []

    payload = json.loads(_event(pgw, ids[0]).payload)
    assert payload["type"] == "message.created"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"] == {"account_id": tenant_a.account_id, "id": "msg_1", "subject": "Hi"}


def test_enqueue_rolls_back_with_the_change(
    pgw: Gateway, pclient: TestClient, tenant_a: Tenant, receiver: Receiver
) -> None:
    _create(pclient, tenant_a, receiver.url)
    with pytest.raises(RuntimeError), session_scope(pgw.engine) as session:
        webhooks.enqueue(session, tenant_a.id, tenant_a.account_id, "message.created", {})
        raise RuntimeError("the change failed")
    with Session(pgw.engine) as session:
        assert session.exec(select(WebhookEvent)).all() == []


# --- delivery -----------------------------------------------------------------------------------


def test_delivery_is_signed_and_recorded(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    created = _create(pclient, tenant_a, receiver.url)
    [event_id] = _enqueue(pgw, tenant_a, id="msg_1", subject="Grüße", date="2024-01-02T03:04:05Z")
    dispatcher = _dispatcher(dispatchers, pgw)

    assert dispatcher.deliver_due() == 1
    assert dispatcher.deliver_due() == 0
    [request] = receiver.requests
    assert request.path == "/hooks/mail"
    assert request.headers["webhook-id"] == event_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    body = Webhook(created["secret"]).verify(request.body, request.headers)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "message.created"
    assert body["data"]["account_id"] == tenant_a.account_id
    assert body["data"]["subject"] == "Grüße"
    with pytest.raises(Exception, match="signature"):
        Webhook(webhooks.new_secret()).verify(request.body, request.headers)

    event = _event(pgw, event_id)
    assert (event.status, event.attempts, event.claimed_until) == ("delivered", 1, None)
    [delivery] = _deliveries(pclient, tenant_a, created["id"])
    assert delivery["event_id"] == event_id and delivery["event_type"] == "message.created"
    assert delivery["succeeded"] is True and delivery["attempt"] == 1
    assert delivery["status_code"] == 200 and delivery["error"] is None
    assert delivery["response_body"] == '{"ok":true}'
    assert delivery["duration_ms"] >= 0


def test_failed_attempt_is_retried_with_the_same_id(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    created = _create(pclient, tenant_a, receiver.url)
    [event_id] = _enqueue(pgw, tenant_a)
    dispatcher = _dispatcher(dispatchers, pgw)
    receiver.fail = 1

    assert dispatcher.deliver_due() == 1
    event = _event(pgw, event_id)
    assert (event.status, event.attempts, event.claimed_until) == ("pending", 1, None)
    assert event.next_attempt_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None)
    assert dispatcher.deliver_due() == 0  # backing off

    _make_due(pgw)
    assert dispatcher.deliver_due() == 1
    assert receiver.ids() == [event_id, event_id]
    for request in receiver.requests:
        Webhook(created["secret"]).verify(request.body, request.headers)
    second, first = _deliveries(pclient, tenant_a, created["id"])
    assert (first["attempt"], first["succeeded"], first["status_code"]) == (1, False, 500)
    assert first["response_body"] == "oops" and "500" in first["error"]
    assert (second["attempt"], second["succeeded"], second["status_code"]) == (2, True, 200)
    assert _event(pgw, event_id).status == "delivered"


def test_receiver_down_then_a_restarted_dispatcher_delivers(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    [event_id] = _enqueue(pgw, tenant_a)
    receiver.stop()

    assert _dispatcher(dispatchers, pgw).deliver_due() == 1
    [attempt] = _deliveries(pclient, tenant_a, webhook_id)
    assert attempt["succeeded"] is False and attempt["status_code"] is None
    assert "ConnectError" in attempt["error"]
    assert _event(pgw, event_id).status == "pending"

    receiver.start()  # same port
    _make_due(pgw)
    restarted = _dispatcher(dispatchers, pgw)
    assert restarted.deliver_due() == 1
    assert receiver.ids() == [event_id]
    assert _event(pgw, event_id).status == "delivered"


def test_a_dispatcher_that_stops_finishes_its_attempt_and_gives_the_rest_back(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    """A process told to stop (SIGTERM) records the delivery under way and puts the events it
    claimed but did not try back in the outbox at once: another process sends them now, not
    after the claim's lease (issue 15: an endpoint stalled 559 s behind a dead claim)."""
    _create(pclient, tenant_a, receiver.url)
    ids = [_enqueue(pgw, tenant_a, subject=f"m{n}")[0] for n in range(5)]
    receiver.hang = 1.0
    stopping = _dispatcher(dispatchers, pgw, timeout=10)
    rounds = threading.Thread(target=stopping.deliver_due)
    rounds.start()
    deadline = time.monotonic() + 20
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert receiver.requests, "the first delivery never started"
    stopping.close()  # while the first POST hangs
    rounds.join(timeout=20)
    assert _event(pgw, ids[0]).status == "delivered"  # the attempt under way was recorded
    for event_id in ids[1:]:
        event = _event(pgw, event_id)
        assert event.status == "pending" and event.claimed_until is None
    receiver.hang = 0.0
    assert _dispatcher(dispatchers, pgw).deliver_due() == 4  # no lease to wait out
    assert [_event(pgw, event_id).status for event_id in ids] == ["delivered"] * 5


def test_a_hanging_receiver_times_out(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    [event_id] = _enqueue(pgw, tenant_a)
    receiver.hang = 3.0  # answered after 3 s, it would be a success: the 0.5 s timeout ends it
    assert _dispatcher(dispatchers, pgw, timeout=0.5).deliver_due() == 1
    [attempt] = _deliveries(pclient, tenant_a, webhook_id)
    assert attempt["succeeded"] is False and "no answer within 0.5 s" in attempt["error"]
    assert _event(pgw, event_id).status == "pending"


def test_endpoint_is_disabled_after_repeated_failures_and_re_enabled(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    first, second = _enqueue(pgw, tenant_a), _enqueue(pgw, tenant_a)
    dispatcher = _dispatcher(dispatchers, pgw, disable_after=3)
    receiver.fail = 100
    for _ in range(3):
        _make_due(pgw)
        assert dispatcher.deliver_due() == 1  # the older event only: order is kept
    shown = pclient.get(f"/v1/webhooks/{webhook_id}", headers=tenant_a.auth).json()
    assert shown["enabled"] is False
    assert "3 consecutive failed deliveries" in shown["disabled_reason"]
    assert receiver.ids() == first * 3

    _make_due(pgw)
    assert dispatcher.deliver_due() == 0  # kept, not sent, not lost
    assert _enqueue(pgw, tenant_a) == []  # a disabled endpoint takes no new events
    assert {_event(pgw, i).status for i in first + second} == {"pending"}

    receiver.fail = 0
    answer = pclient.patch(
        f"/v1/webhooks/{webhook_id}", json={"enabled": True}, headers=tenant_a.auth
    )
    assert answer.json()["enabled"] is True and answer.json()["disabled_reason"] is None
    _make_due(pgw)
    assert dispatcher.deliver_due() == 2
    assert receiver.ids() == first * 3 + first + second  # oldest first
    assert {_event(pgw, i).status for i in first + second} == {"delivered"}


def test_event_fails_after_max_attempts(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    _create(pclient, tenant_a, receiver.url)
    [event_id] = _enqueue(pgw, tenant_a)
    dispatcher = _dispatcher(dispatchers, pgw, max_attempts=2)
    receiver.fail = 100
    for _ in range(3):
        _make_due(pgw)
        dispatcher.deliver_due()
    event = _event(pgw, event_id)
    assert (event.status, event.attempts) == ("failed", 2)
    assert len(receiver.requests) == 2


def test_delivery_time_guard_refuses_a_now_private_target(
    tmp_path: Path,
    database_url: str,
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    _enqueue(pgw, tenant_a)
    strict = Gateway.from_settings(make_settings(tmp_path, database_url))
    try:
        assert _dispatcher(dispatchers, strict).deliver_due() == 1
    finally:
        strict.close()
    assert receiver.requests == []
    [attempt] = _deliveries(pclient, tenant_a, webhook_id)
    assert attempt["error"].startswith("refused:") and "loopback" in attempt["error"]


def test_a_delivery_goes_to_the_address_that_was_checked(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    """No DNS knows hooks.mailgate.test: only the addresses of the delivery-time check can
    have been connected to, and the receiver still sees its own name as Host."""
    url = f"http://hooks.mailgate.test:{receiver.port}/hook"
    _create(pclient, tenant_a, url)
    _enqueue(pgw, tenant_a)
    names = Names(hooks_mailgate_test=["127.0.0.1"])
    assert _dispatcher(dispatchers, pgw, resolver=names).deliver_due() == 1
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.mailgate.test:{receiver.port}"
    assert names.lookups == 1


def test_a_name_that_turns_private_after_the_check_is_not_followed(
    tmp_path: Path,
    database_url: str,
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    """DNS rebinding: the name answers a public address to the check and the receiver's
    loopback address to any later lookup. The delivery goes to the public address (which
    this machine cannot reach), never to the receiver."""
    webhook_id = _create(pclient, tenant_a, f"http://hooks.mailgate.test:{receiver.port}/")["id"]
    _enqueue(pgw, tenant_a)
    answers = iter([["8.8.8.8"]])

    class Rebinding(Names):
        def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            self.names[host] = next(answers, ["127.0.0.1"])
            return super().__call__(host, port, *args, **kwargs)

    names = Rebinding(hooks_mailgate_test=[])
    strict = Gateway.from_settings(make_settings(tmp_path, database_url))
    try:
        _dispatcher(dispatchers, strict, resolver=names, timeout=0.5).deliver_due()
    finally:
        strict.close()
    assert receiver.requests == []
    [attempt] = _deliveries(pclient, tenant_a, webhook_id)
    assert attempt["succeeded"] is False and not attempt["error"].startswith("refused")
    assert names.lookups == 1


def test_response_body_is_truncated_and_nul_free(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    _enqueue(pgw, tenant_a)
    receiver.answer = b"ab\x00c" * 3000
    assert _dispatcher(dispatchers, pgw).deliver_due() == 1
    [attempt] = _deliveries(pclient, tenant_a, webhook_id)
    assert attempt["succeeded"] is True
    assert "\x00" not in attempt["response_body"]
    assert attempt["response_body"].startswith("abcabc")
    assert len(attempt["response_body"]) <= BODY_LIMIT


def test_deliveries_page_newest_first(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    _enqueue(pgw, tenant_a)
    dispatcher = _dispatcher(dispatchers, pgw)
    receiver.fail = 2
    for _ in range(3):
        _make_due(pgw)
        dispatcher.deliver_due()
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = pclient.get(
            f"/v1/webhooks/{webhook_id}/deliveries", params=params, headers=tenant_a.auth
        ).json()
        seen += [item["attempt"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [3, 2, 1]
    bad = pclient.get(
        f"/v1/webhooks/{webhook_id}/deliveries", params={"cursor": "zzz"}, headers=tenant_a.auth
    )
    assert_problem(bad, 422, "validation-error")
    too_many = pclient.get(
        f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 101}, headers=tenant_a.auth
    )
    assert_problem(too_many, 422, "validation-error")


def test_concurrent_dispatchers_deliver_each_event_once(
    pgw: Gateway,
    pclient: TestClient,
    tenant_a: Tenant,
    receiver: Receiver,
    dispatchers: list[Dispatcher],
) -> None:
    for _ in range(4):
        _create(pclient, tenant_a, receiver.url)
    events = [i for _ in range(5) for i in _enqueue(pgw, tenant_a)]
    assert len(events) == 20
    pair = [_dispatcher(dispatchers, pgw, batch=3) for _ in range(2)]
    counts = [0, 0]
    start = threading.Barrier(2)

    def drain(index: int) -> None:
        start.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts[index] += pair[index].deliver_due()
            with Session(pgw.engine) as session:
                left = session.exec(
                    select(WebhookEvent.id).where(col(WebhookEvent.status) == "pending")
                ).first()
            if left is None:
                return

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(receiver.ids()) == Counter(events)  # every event exactly once
    assert sum(counts) == 20
    assert {_event(pgw, i).status for i in events} == {"delivered"}


def test_serve_runs_the_dispatcher(pgw: Gateway, tenant_a: Tenant, receiver: Receiver) -> None:
    with TestClient(create_app(pgw, background=True)) as client:
        _create(client, tenant_a, receiver.url)
        [event_id] = _enqueue(pgw, tenant_a)
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    assert receiver.ids() == [event_id]


def test_backoff_has_full_jitter_within_bounds() -> None:
    samples = [backoff(3) for _ in range(200)]
    assert all(1.0 <= s <= 16.0 for s in samples)
    assert max(backoff(40) for _ in range(50)) <= 3600.0


def test_deleting_an_endpoint_drops_its_events(
    pgw: Gateway, pclient: TestClient, tenant_a: Tenant, receiver: Receiver
) -> None:
    webhook_id = _create(pclient, tenant_a, receiver.url)["id"]
    _enqueue(pgw, tenant_a)
    pclient.delete(f"/v1/webhooks/{webhook_id}", headers=tenant_a.auth)
    with Session(pgw.engine) as session:
        assert session.exec(select(WebhookEvent)).all() == []
        assert session.exec(select(WebhookEndpoint)).all() == []


def test_a_committed_webhook_wakes_the_dispatcher_at_once(
    pgw: Gateway, pclient: TestClient, tenant_a: Tenant, receiver: Receiver
) -> None:
    """`run_forever` rests up to its interval between empty rounds; a webhook queued in this
    process ends the rest (so new mail is not held back a whole interval), and only once
    the transaction that queued it has committed."""
    from mailgate.store import outbox

    _create(pclient, tenant_a, receiver.url)
    outbox.queued.clear()
    with session_scope(pgw.engine) as session:
        webhooks.enqueue(session, tenant_a.id, tenant_a.account_id, "message.created", {})
        assert not outbox.queued.is_set()  # not before the commit
    assert outbox.queued.is_set()

    outbox.queued.clear()
    with pytest.raises(RuntimeError), session_scope(pgw.engine) as session:
        webhooks.enqueue(session, tenant_a.id, tenant_a.account_id, "message.created", {})
        raise RuntimeError("rolled back")
    assert not outbox.queued.is_set()  # nothing was queued after all

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 30
        while len(receiver.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    async def deliver_two() -> None:
        task = asyncio.create_task(_dispatcher([], pgw).run_forever(interval=3600))
        try:
            await asyncio.to_thread(wait_for, 1)  # the first round sends the queued one
            await asyncio.sleep(0.2)  # then it rests, for an hour
            with session_scope(pgw.engine) as session:
                webhooks.enqueue(session, tenant_a.id, tenant_a.account_id, "message.created", {})
            await asyncio.to_thread(wait_for, 2)  # ... but the bell ends the rest
        finally:
            task.cancel()

    asyncio.run(deliver_two())
    assert len(receiver.requests) == 2
