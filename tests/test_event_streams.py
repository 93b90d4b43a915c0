"""Event streams (Server-Sent Events) over real HTTP: the gateway served by uvicorn, real
IMAP accounts on Dovecot, changes made through the API. Events arrive with the change-feed
state as their id; a reconnect with Last-Event-ID gets exactly what it missed; an unknown id
gets a resync; tokens and tenants are checked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailgate.api.app import create_app
from mailgate.gateway import push
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.changes import EVENT_KIND, record
from mailgate.store.migrate import upgrade
from mailgate.store.outbox import event_body, logged
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.serve import served
from tests.helpers import account_body, assert_problem
from tests.sse_client import Sse, read_events, take


@pytest.fixture
def stream_gateway(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    settings = make_settings(
        tmp_path, database_url, events_heartbeat_interval=0.5, events_poll_interval=0.2
    )
    gw = Gateway.from_settings(settings)
    upgrade(gw.engine)
    yield gw
    gw.close()


@pytest.fixture
def base_url(stream_gateway: Gateway) -> Iterator[str]:
    with served(create_app(stream_gateway)) as url:
        yield url


@pytest.fixture
def http(base_url: str, stream_gateway: Gateway) -> Iterator[httpx.Client]:
    key = issue_api_key(stream_gateway.engine, "shop").key
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=20) as client:
        yield client


def add_imap(
    http: httpx.Client,
    dovecot: DovecotServer,
    user: MailUser,
    headers: dict[str, str] | None = None,
) -> str:
    body = account_body("imap", dovecot.imap_port, user)
    made = http.post("/v1/accounts", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def make_folder(http: httpx.Client, account_id: str, name: str) -> dict[str, Any]:
    made = http.post(f"/v1/accounts/{account_id}/folders", json={"name": name})
    assert made.status_code == 201, made.text
    return dict(made.json())


def until_end(http: httpx.Client, path: str, **params: Any) -> list[Sse]:
    """Every event of a stream asked to end at once (``duration=0``)."""
    headers = params.pop("headers", {})
    with http.stream("GET", path, params={**params, "duration": 0}, headers=headers) as response:
        assert response.status_code == 200, response.read()
        return [event for event in read_events(response) if event.event != ":"]


def test_events_arrive_with_states_and_resume_exactly(
    http: httpx.Client, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account_id = add_imap(http, dovecot, mail_user)
    path = f"/v1/accounts/{account_id}/events"
    with http.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_events(response)
        [ready] = take(events, 1)
        assert ready.event == "ready"
        assert ready.id == http.get(f"/v1/accounts/{account_id}/changes").json()["state"]
        first = make_folder(http, account_id, "Orders")
        [created] = take(events, 1)
    assert created.event == "folder.created"
    assert created.data["type"] == "folder.created"
    assert created.data["data"] == {"account_id": account_id, **first}
    assert created.id == http.get(f"/v1/accounts/{account_id}/changes").json()["state"]

    # while nobody listens: two more changes, then a reconnect gets exactly those
    second = make_folder(http, account_id, "Invoices")
    renamed = http.patch(
        f"/v1/accounts/{account_id}/folders/{first['id']}", json={"name": "Shipped"}
    )
    assert renamed.status_code == 200, renamed.text
    missed = until_end(http, path, headers={"Last-Event-ID": created.id})
    assert [e.event for e in missed] == ["folder.created", "folder.deleted", "folder.created"]
    assert missed[0].data["data"]["id"] == second["id"]
    assert missed[1].data["data"]["id"] == first["id"]
    assert missed[2].data["data"]["id"] == renamed.json()["id"]
    state = http.get(f"/v1/accounts/{account_id}/changes").json()["state"]
    assert missed[-1].id == state
    # the same with the query parameter; the header wins over it (a browser's reconnect)
    assert until_end(http, path, last_event_id=missed[0].id) == missed[1:]
    assert until_end(http, path, last_event_id="s0", headers={"Last-Event-ID": state}) == []
    # nothing repeated from the newest id
    assert until_end(http, path, last_event_id=state) == []


def test_an_unknown_id_resyncs_and_goes_on_from_now(
    http: httpx.Client, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account_id = add_imap(http, dovecot, mail_user)
    make_folder(http, account_id, "Before")
    state = http.get(f"/v1/accounts/{account_id}/changes").json()["state"]
    path = f"/v1/accounts/{account_id}/events"
    for unknown in ("s999999", "42", "t:", "garbage"):
        [resync] = until_end(http, path, headers={"Last-Event-ID": unknown})
        assert resync.event == "resync"
        assert resync.id == state
        assert resync.data["data"]["last_event_id"] == unknown
    with http.stream("GET", path, headers={"Last-Event-ID": "s999999"}) as response:
        events = read_events(response)
        assert take(events, 1)[0].event == "resync"
        after = make_folder(http, account_id, "After")
        [created] = take(events, 1)
    assert created.event == "folder.created"
    assert created.data["data"]["id"] == after["id"]


def test_the_tenant_stream_carries_every_account_and_resumes_exactly(
    http: httpx.Client, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    first = add_imap(http, dovecot, mail_user)
    [ready] = until_end(http, "/v1/events")
    assert ready.event == "ready"
    second = add_imap(http, dovecot, dovecot.add_user())
    make_folder(http, first, "One")
    make_folder(http, second, "Two")
    make_folder(http, first, "Three")
    got = until_end(http, "/v1/events", last_event_id=ready.id)
    assert [(e.data["data"]["account_id"], e.data["data"]["path"]) for e in got] == [
        (first, "One"),
        (second, "Two"),
        (first, "Three"),
    ]
    assert got[-1].id.startswith("t:")
    assert until_end(http, "/v1/events", last_event_id=got[0].id) == got[1:]
    assert until_end(http, "/v1/events", last_event_id=got[-1].id) == []
    [resync] = until_end(http, "/v1/events", last_event_id=f"t:{first}:999")
    assert resync.event == "resync"
    assert resync.id == got[-1].id


def test_tokens_open_streams_for_their_tenant_and_account_only(
    http: httpx.Client, stream_gateway: Gateway, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account_id = add_imap(http, dovecot, mail_user)
    other_account = add_imap(http, dovecot, dovecot.add_user())
    path = f"/v1/accounts/{account_id}/events"
    bare = httpx.Client(base_url=str(http.base_url), timeout=20)

    made = http.post("/v1/events/tokens", json={"account_id": account_id, "ttl_seconds": 60})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["account_id"] == account_id
    [ready] = until_end(bare, path, access_token=token)
    assert ready.event == "ready"
    # bound to one account: the other is not found, the tenant stream carries it alone
    assert_problem(
        bare.get(f"/v1/accounts/{other_account}/events?access_token={token}"), 404, "not-found"
    )
    make_folder(http, other_account, "Elsewhere")
    make_folder(http, account_id, "Here")
    got = until_end(bare, "/v1/events", access_token=token, last_event_id="t:")
    assert [e.data["data"]["account_id"] for e in got] == [account_id]

    # a bad, a forged and an expired token, and no credentials at all: 401
    signer = stream_gateway.passwords.signer(push.TOKEN_PURPOSE)
    expired, _ = signer.seal({"t": "ten_x", "a": None}, ttl_seconds=-1)
    for wrong in ("mgev_nonsense", token[:-4] + "AAAA", expired):
        assert_problem(bare.get(path, params={"access_token": wrong}), 401, "unauthorized")
    assert_problem(bare.get(path), 401, "unauthorized")
    # an API key never goes in the query
    key = http.headers["Authorization"].removeprefix("Bearer ")
    assert_problem(bare.get(path, params={"access_token": key}), 401, "unauthorized")
    # the header takes an events token too
    with bare.stream("GET", path, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status_code == 200

    # another tenant: neither its key nor its token sees the account
    other_key = issue_api_key(stream_gateway.engine, "elsewhere").key
    other = {"Authorization": f"Bearer {other_key}"}
    assert_problem(bare.get(path, headers=other), 404, "not-found")
    assert_problem(
        bare.post("/v1/events/tokens", json={"account_id": account_id}, headers=other),
        404,
        "not-found",
    )
    other_token = bare.post("/v1/events/tokens", json={}, headers=other).json()["token"]
    assert_problem(bare.get(path, params={"access_token": other_token}), 404, "not-found")
    assert until_end(bare, "/v1/events", access_token=other_token, last_event_id="t:") == []
    bare.close()


def test_heartbeats_while_idle_and_the_stream_ends_with_its_client(
    http: httpx.Client, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account_id = add_imap(http, dovecot, mail_user)
    with http.stream("GET", f"/v1/accounts/{account_id}/events") as response:
        events = read_events(response)
        ready, beat = take(events, 2, comments=True)
        assert (ready.event, beat.event, beat.comment) == ("ready", ":", "heartbeat")
        assert _soon(lambda: logged.waiting >= 1)  # it waits between looks
    assert _soon(lambda: logged.waiting == 0)  # the server's side of the stream is gone


def _soon(condition: Any) -> bool:
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def test_events_another_process_logged_arrive_by_polling(
    http: httpx.Client, stream_gateway: Gateway, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    """A commit of another process rings no bell here: the stream finds it at its next look
    (MAILGATE_EVENTS_POLL_INTERVAL, 0.2 s here)."""
    account_id = add_imap(http, dovecot, mail_user)
    with http.stream("GET", f"/v1/accounts/{account_id}/events") as response:
        events = read_events(response)
        [ready] = take(events, 1)
        body = event_body("account.error", account_id, {"state": "unreachable", "error": "x"})
        rung = logged.rung
        with stream_gateway.engine.begin() as connection:  # no Session: as elsewhere
            record(connection, account_id, [(EVENT_KIND, "account.error", "created")], [body])
        [error] = take(events, 1)
        assert logged.rung == rung
    assert (error.event, error.data["data"]["state"]) == ("account.error", "unreachable")
    assert error.id == f"s{int(ready.id[1:]) + 1}"


def test_a_stream_ends_when_its_key_is_deleted(
    tmp_path: Path, database_url: str, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    """A stream is open for hours: deleting the key it was opened with ends it (within the
    key cache's time, here none), instead of streaming on to whoever held the key."""
    settings = make_settings(
        tmp_path, database_url, events_heartbeat_interval=0.5, api_key_cache_seconds=0
    )
    gw = Gateway.from_settings(settings)
    upgrade(gw.engine)
    admin = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'shop').key}"}
    try:
        with served(create_app(gw)) as url, httpx.Client(base_url=url, timeout=20) as http:
            account_id = add_imap(http, dovecot, mail_user, admin)
            made = http.post(
                "/v1/keys", json={"name": "browser", "scopes": ["read"]}, headers=admin
            )
            assert made.status_code == 201, made.text
            reader = {"Authorization": f"Bearer {made.json()['key']}"}
            path = f"/v1/accounts/{account_id}/events"
            with http.stream("GET", path, headers=reader) as response:
                assert response.status_code == 200
                events = read_events(response)
                take(events, 2, comments=True)  # ready, and a heartbeat: it streams
                gone = http.delete(f"/v1/keys/{made.json()['id']}", headers=admin)
                assert gone.status_code == 204, gone.text
                deleted = time.monotonic()
                rest = list(events)  # until the server ends the stream
                ended = time.monotonic() - deleted
            assert ended < 5, f"the stream went on {ended:.1f} s after its key was deleted"
            assert all(event.event == ":" for event in rest)  # heartbeats at most
            again = http.get(path, headers=reader)
            assert_problem(again, 401, "unauthorized")
    finally:
        gw.close()
