"""API keys a frontend can hold: /v1/keys, scopes, account bindings, expiry, last use. Real
Dovecot accounts behind the app, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer
from tests.harness.serve import served
from tests.helpers import account_body, assert_problem
from tests.sse_client import read_events


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_key(client: httpx.Client, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    made = client.post("/v1/keys", headers=auth, json={"name": "test key", **body})
    assert made.status_code == 201, made.text
    return dict(made.json())


def add_account(client: httpx.Client, auth: dict[str, str], dovecot: DovecotServer) -> str:
    user = dovecot.add_user()
    made = client.post(
        "/v1/accounts", headers=auth, json=account_body("imap", dovecot.imap_port, user)
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_an_admin_key_makes_lists_reads_and_deletes_keys(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    made = make_key(client, auth, name="mobile app", scopes=["read"])
    key = made.pop("key")
    assert key.startswith("mg_") and made["prefix"] == key[:10]
    assert made["scopes"] == ["read"] and made["account_ids"] is None
    assert made["last_used_at"] is None and made["expires_at"] is None
    listed = client.get("/v1/keys", headers=auth).json()["items"]
    assert [item["name"] for item in listed] == ["made by mailgate keys create", "mobile app"]
    assert all("key" not in item for item in listed)
    assert key not in client.get("/v1/keys", headers=auth).text
    assert client.get(f"/v1/keys/{made['id']}", headers=auth).json()["name"] == "mobile app"
    # another tenant does not see it
    assert_problem(client.get(f"/v1/keys/{made['id']}", headers=other_auth), 404, "not-found")
    assert_problem(client.delete(f"/v1/keys/{made['id']}", headers=other_auth), 404, "not-found")
    assert client.get("/v1/accounts", headers=bearer(key)).status_code == 200
    assert client.delete(f"/v1/keys/{made['id']}", headers=auth).status_code == 204
    # revoked at once (in this process; others within the key cache's seconds)
    refused = assert_problem(client.get("/v1/accounts", headers=bearer(key)), 401, "unauthorized")
    assert refused["detail"] == "The API key is not valid."
    assert_problem(client.get(f"/v1/keys/{made['id']}", headers=auth), 404, "not-found")
    assert [item["name"] for item in client.get("/v1/keys", headers=auth).json()["items"]] == [
        "made by mailgate keys create"
    ]


def test_last_used_at_is_set_by_use(client: TestClient, auth: dict[str, str]) -> None:
    made = make_key(client, auth, scopes=["read"])
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert client.get("/v1/accounts", headers=bearer(made["key"])).status_code == 200
    used = client.get(f"/v1/keys/{made['id']}", headers=auth).json()["last_used_at"]
    assert used is not None and datetime.fromisoformat(used) >= before


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"scopes": []}, ["body", "scopes"]),
        ({"scopes": ["read", "read"]}, ["body", "scopes"]),
        ({"scopes": ["superuser"]}, ["body", "scopes", 0]),
        ({"scopes": ["admin"], "account_ids": ["acc_xxxxxxxxxxxx"]}, ["body"]),
        ({"scopes": ["read"], "expires_at": "2030-01-01T00:00:00"}, ["body"]),
        ({"scopes": ["read"], "expires_at": "2020-01-01T00:00:00Z"}, ["body", "expires_at"]),
        ({"scopes": ["read"], "account_ids": []}, ["body", "account_ids"]),
        ({"scopes": ["read"], "account_ids": ["acc_xxxxxxxxxxxx"]}, ["body", "account_ids", 0]),
        ({"scopes": ["read"], "name": "a\nb"}, ["body", "name"]),
        ({"scopes": ["read"], "rate_limit_per_minute": 0}, ["body", "rate_limit_per_minute"]),
    ],
)
def test_a_bad_key_request_is_a_validation_error_naming_the_field(
    client: TestClient, auth: dict[str, str], body: dict[str, Any], where: list[Any]
) -> None:
    problem = assert_problem(
        client.post("/v1/keys", headers=auth, json={"name": "k", **body}), 422, "validation-error"
    )
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert any(error["loc"][: len(where)] == where for error in errors), errors
    assert len(client.get("/v1/keys", headers=auth).json()["items"]) == 1


def test_scopes_allow_what_they_name_and_no_more(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer
) -> None:
    account_id = add_account(client, auth, dovecot)
    inbox = f"/v1/accounts/{account_id}/messages"
    read = bearer(make_key(client, auth, scopes=["read"])["key"])
    write = bearer(make_key(client, auth, scopes=["write"])["key"])
    send = bearer(make_key(client, auth, scopes=["send"])["key"])
    folder = {"name": "Projects"}
    # read: reads, changes nothing
    assert client.get(inbox, headers=read).status_code == 200
    assert client.get(f"/v1/accounts/{account_id}/folders", headers=read).status_code == 200
    refused = assert_problem(
        client.post(f"/v1/accounts/{account_id}/folders", headers=read, json=folder),
        403,
        "insufficient-scope",
    )
    assert refused["detail"] == "This operation needs an API key with the `write` scope."
    assert_problem(client.post("/v1/keys", headers=read, json={}), 403, "insufficient-scope")
    assert_problem(client.get("/v1/webhooks", headers=read), 403, "insufficient-scope")
    assert_problem(
        client.delete(f"/v1/accounts/{account_id}", headers=read), 403, "insufficient-scope"
    )
    # write: changes the mailbox and reads; sends nothing, manages nothing
    made = client.post(f"/v1/accounts/{account_id}/folders", headers=write, json=folder)
    assert made.status_code == 201, made.text
    assert client.get(inbox, headers=write).status_code == 200
    message = {"to": [{"email": "x@example.com"}], "subject": "hi", "text": "hi"}
    sending = f"/v1/accounts/{account_id}/send"
    assert_problem(client.post(sending, headers=write, json=message), 403, "insufficient-scope")
    assert_problem(client.post("/v1/accounts", headers=write, json={}), 403, "insufficient-scope")
    # send: sends and follows its submissions; reads no mail
    assert_problem(client.get(inbox, headers=send), 403, "insufficient-scope")
    submissions = client.get(f"/v1/accounts/{account_id}/submissions", headers=send)
    assert submissions.status_code == 200
    no_smtp = assert_problem(
        client.post(sending, headers=send, json=message), 422, "validation-error"
    )
    assert no_smtp["detail"] == "the account has no SMTP settings; PUT /smtp first"  # let in
    # nothing was removed by the refused calls
    assert client.get(f"/v1/accounts/{account_id}", headers=auth).status_code == 200
    names = [
        f["name"]
        for f in client.get(f"/v1/accounts/{account_id}/folders", headers=auth).json()["items"]
    ]
    assert "Projects" in names


def test_a_key_bound_to_accounts_never_sees_the_others(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer
) -> None:
    mine, other = add_account(client, auth, dovecot), add_account(client, auth, dovecot)
    bound = bearer(make_key(client, auth, scopes=["write"], account_ids=[mine])["key"])
    listed = client.get("/v1/accounts", headers=bound).json()["items"]
    assert [account["id"] for account in listed] == [mine]
    assert client.get(f"/v1/accounts/{mine}/folders", headers=bound).status_code == 200
    for path in ("", "/folders", "/messages", "/changes", "/submissions", "/events"):
        answer = client.get(f"/v1/accounts/{other}{path}", headers=bound)
        assert assert_problem(answer, 404, "not-found")["detail"] == "No such account.", path
    assert_problem(
        client.post(f"/v1/accounts/{other}/folders", headers=bound, json={"name": "x"}),
        404,
        "not-found",
    )
    token = client.post("/v1/events/tokens", headers=bound, json={"account_id": other})
    assert_problem(token, 404, "not-found")
    # the same 404 as an id that does not exist at all
    unknown = client.get("/v1/accounts/acc_doesnotexist0/folders", headers=bound)
    assert assert_problem(unknown, 404, "not-found")["detail"] == "No such account."


def test_an_expired_key_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    made = make_key(client, auth, scopes=["read"], expires_at=soon.isoformat())
    assert client.get("/v1/accounts", headers=bearer(made["key"])).status_code == 200
    time.sleep(max((soon - datetime.now(UTC)).total_seconds(), 0) + 0.2)
    refused = client.get("/v1/accounts", headers=bearer(made["key"]))
    assert assert_problem(refused, 401, "unauthorized")["detail"] == "The API key has expired."
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # still listed, with its expiry, until deleted
    assert client.get(f"/v1/keys/{made['id']}", headers=auth).json()["expires_at"] is not None


# --- event streams ------------------------------------------------------------------------


@pytest.fixture
def base_url(gateway: Gateway) -> Iterator[str]:
    with served(create_app(gateway)) as url:
        yield url


def test_a_bound_key_streams_only_its_accounts_and_its_tokens_die_with_it(
    base_url: str, gateway: Gateway, api_key: str, dovecot: DovecotServer
) -> None:
    with httpx.Client(base_url=base_url, headers=bearer(api_key), timeout=20) as admin:
        mine, other = add_account(admin, {}, dovecot), add_account(admin, {}, dovecot)
        made = make_key(admin, {}, scopes=["read", "write"], account_ids=[mine])
    key = made["key"]
    with httpx.Client(base_url=base_url, timeout=20) as http:
        token = http.post("/v1/events/tokens", headers=bearer(key), json={}).json()["token"]
        for account_id in (mine, other):
            created = http.post(
                f"/v1/accounts/{account_id}/folders",
                headers=bearer(api_key),
                json={"name": f"from-{account_id}"},
            )
            assert created.status_code == 201, created.text
        with http.stream(
            "GET",
            "/v1/events",
            params={"access_token": token, "duration": 0, "last_event_id": "t:"},
        ) as response:
            assert response.status_code == 200, response.read()
            events = [e for e in read_events(response) if e.event == "folder.created"]
        accounts = {event.data["data"]["account_id"] for event in events}
        assert accounts == {mine}
        # a write key's token opens streams, but the token is for streams alone
        assert_problem(
            http.get("/v1/accounts", params={"access_token": token}), 401, "unauthorized"
        )
        with httpx.Client(base_url=base_url, headers=bearer(api_key)) as admin:
            assert admin.delete(f"/v1/keys/{made['id']}").status_code == 204
        refused = http.get("/v1/events", params={"access_token": token, "duration": 0})
        assert_problem(refused, 401, "unauthorized")


def test_a_send_key_cannot_open_event_streams(client: TestClient, auth: dict[str, str]) -> None:
    send = bearer(make_key(client, auth, scopes=["send"])["key"])
    assert_problem(
        client.post("/v1/events/tokens", headers=send, json={}), 403, "insufficient-scope"
    )
    assert_problem(client.get("/v1/events?duration=0", headers=send), 403, "insufficient-scope")


def test_keys_made_before_scopes_existed_are_admin_keys(tmp_path: Path, database_url: str) -> None:
    """A database of the last release: its keys keep working, with every scope."""
    gw = Gateway.from_settings(make_settings(tmp_path, database_url))
    try:
        upgrade(gw.engine, "0016")
        with gw.engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO tenant (id, name, created_at) "
                "VALUES ('ten_old', 'old', CURRENT_TIMESTAMP)"
            )
            connection.exec_driver_sql(
                "INSERT INTO api_key (id, tenant_id, prefix, key_hash, created_at) VALUES "
                "('key_old', 'ten_old', 'mg_old', "
                f"'{'0' * 64}', CURRENT_TIMESTAMP)"
            )
        upgrade(gw.engine)
        admin = bearer(issue_api_key(gw.engine, "old").key)
        with TestClient(create_app(gw)) as client:
            listed = client.get("/v1/keys", headers=admin).json()["items"]
            assert {item["id"]: item["scopes"] for item in listed}["key_old"] == ["admin"]
    finally:
        gw.close()
