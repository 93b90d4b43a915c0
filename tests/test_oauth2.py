"""OAuth2 mailboxes end to end (issue 12): a real authorization server (Authlib, on loopback),
a real Dovecot that checks every XOAUTH2/OAUTHBEARER login by introspection, and Mailgate
served by uvicorn, driven by one httpx client that follows redirects as a browser does."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.oauth2.tokens import AccountTokens
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.models import Account, AccountToken, OAuthSignin, WebhookEvent, utcnow
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.oauth import OAuthServer
from tests.harness.serve import served as serving
from tests.helpers import assert_problem
from tests.mail_factory import dated

FRONTEND = "https://frontend.example/signed-in"


@dataclass
class Served:
    base: str
    gw: Gateway
    http: httpx.Client  # the tenant's API calls
    browser: httpx.Client  # no API key: a user's browser


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[Served]:
    settings = make_settings(tmp_path, database_url, allow_private_webhooks=True)
    gw = Gateway.from_settings(settings)
    gw.migrate()
    key = issue_api_key(gw.engine, "tenant-a").key
    with (
        serving(create_app(gw)) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
        httpx.Client(timeout=60) as browser,
    ):
        yield Served(base, gw, http, browser)
    gw.close()


@pytest.fixture
def mailbox(oauth_dovecot: DovecotServer, oauth_server: OAuthServer) -> MailUser:
    """A mailbox whose login name is its address, as at Google or Microsoft."""
    user = oauth_dovecot.add_user(f"u{secrets.token_hex(4)}@example.org")
    oauth_server.add_user(user.username, email=user.username)
    return user


@pytest.fixture
def app(served: Served, oauth_server: OAuthServer, oauth_dovecot: DovecotServer) -> dict[str, Any]:
    redirect_uri = f"{served.base}/v1/oauth2/callback"
    client_id, client_secret = oauth_server.register_client([redirect_uri])
    body = {
        "provider": "custom",
        "name": "Test provider",
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uri": redirect_uri,
        "return_to_allowed": [FRONTEND],
        "scopes": ["mail"],
        "authorization_url": oauth_server.authorize_url,
        "token_url": oauth_server.token_url,
        "userinfo_url": oauth_server.userinfo_url,
        "revocation_url": oauth_server.revocation_url,
        "imap": {"host": "127.0.0.1", "port": oauth_dovecot.imap_port, "security": "none"},
        "pop3": {"host": "127.0.0.1", "port": oauth_dovecot.pop3_port, "security": "none"},
    }
    made = served.http.post("/v1/oauth2/apps", json=body)
    assert made.status_code == 201, made.text
    answer: dict[str, Any] = made.json()
    answer["client_secret"] = client_secret
    return answer


def sign_in(served: Served, start: httpx.Response) -> dict[str, list[str]]:
    """Play the browser from an authorize answer to the frontend: the query it lands with."""
    assert start.status_code == 200, start.text
    url = start.json()["authorization_url"]
    for _ in range(5):
        response = served.browser.get(url, follow_redirects=False)
        assert response.status_code in (302, 303, 307), response.text
        url = response.headers["location"]
        if url.startswith(FRONTEND):
            return parse_qs(urlsplit(url).query)
    raise AssertionError("the sign-in never came back to the frontend")


def new_account(served: Served, app: dict[str, Any], mailbox: MailUser, protocol: str) -> str:
    body = {"return_to": FRONTEND, "protocol": protocol, "login_hint": mailbox.username}
    landed = sign_in(served, served.http.post(f"/v1/oauth2/apps/{app['id']}/authorize", json=body))
    assert "error" not in landed, landed
    [account_id] = landed["account_id"]
    return account_id


def subjects(served: Served, account_id: str) -> list[str]:
    answer = served.http.get(f"/v1/accounts/{account_id}/messages")
    assert answer.status_code == 200, answer.text
    return sorted(m["subject"] for m in answer.json()["items"])


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_hosted_sign_in_adds_a_working_account(
    served: Served,
    app: dict[str, Any],
    mailbox: MailUser,
    oauth_dovecot: DovecotServer,
    protocol: str,
) -> None:
    oauth_dovecot.deliver(mailbox, dated(2))
    account_id = new_account(served, app, mailbox, protocol)
    account = served.http.get(f"/v1/accounts/{account_id}").json()
    assert account["auth_type"] == "oauth2" and account["oauth2_app_id"] == app["id"]
    assert account["username"] == mailbox.username and account["protocol"] == protocol
    assert account["host"] == "127.0.0.1" and account["state"] == "connected"
    assert subjects(served, account_id) == ["Message 0", "Message 1"]


def test_an_expired_token_is_refreshed_and_the_call_succeeds(
    served: Served,
    app: dict[str, Any],
    mailbox: MailUser,
    oauth_server: OAuthServer,
    oauth_dovecot: DovecotServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(oauth_server, "token_lifetime", 2)
    account_id = new_account(served, app, mailbox, "imap")
    time.sleep(2.5)  # the access token is dead: Dovecot's introspection says inactive
    served.gw.mailboxes.forget(account_id)  # the next call logs in again
    refreshes = oauth_server.refresh_count
    oauth_dovecot.deliver(mailbox, dated(1))
    assert subjects(served, account_id) == ["Message 0"]
    assert oauth_server.refresh_count > refreshes


def test_a_token_the_server_refuses_is_refreshed_once(
    served: Served, app: dict[str, Any], mailbox: MailUser, oauth_server: OAuthServer
) -> None:
    """Not expired by the clock, yet refused (revoked at the provider): one refresh, then the
    login works with the new token."""
    account_id = new_account(served, app, mailbox, "imap")
    access = AccountTokens(served.gw.engine, served.gw.passwords, served.gw.oauth2, account_id)(
        None
    )
    revoked = httpx.post(
        oauth_server.revocation_url,
        data={"token": access, "token_type_hint": "access_token"},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert revoked.status_code == 200
    served.gw.mailboxes.forget(account_id)
    refreshes = oauth_server.refresh_count
    assert subjects(served, account_id) == []
    assert oauth_server.refresh_count == refreshes + 1


def test_a_revoked_grant_is_auth_failed_once_and_reauthorize_recovers(
    served: Served,
    app: dict[str, Any],
    mailbox: MailUser,
    oauth_server: OAuthServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = served.http.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["account.error"]}
    )
    assert made.status_code == 201, made.text
    account_id = new_account(served, app, mailbox, "imap")
    monkeypatch.setattr(oauth_server, "token_lifetime", 2)
    assert oauth_server.revoke_user(mailbox.username) >= 1
    _expire_access_token(served.gw, account_id)
    for _ in range(2):  # the second failure is no news: no second event
        served.gw.mailboxes.forget(account_id)
        failed = served.http.get(f"/v1/accounts/{account_id}/messages")
        problem = assert_problem(failed, 422, "mailbox-auth-failed")
        assert "invalid_grant" in str(problem["detail"])
    account = served.http.get(f"/v1/accounts/{account_id}").json()
    assert account["state"] == "auth_failed" and "invalid_grant" in account["state_detail"]
    with Session(served.gw.engine) as session:
        events = session.exec(
            select(WebhookEvent).where(WebhookEvent.type == "account.error")
        ).all()
    assert len(events) == 1

    again = served.http.post(f"/v1/accounts/{account_id}/reauthorize", json={"return_to": FRONTEND})
    landed = sign_in(served, again)
    assert landed.get("account_id") == [account_id], landed
    assert served.http.get(f"/v1/accounts/{account_id}").json()["state"] == "connected"
    assert subjects(served, account_id) == []


def test_reauthorize_must_reach_the_same_mailbox(
    served: Served,
    app: dict[str, Any],
    mailbox: MailUser,
    oauth_dovecot: DovecotServer,
    oauth_server: OAuthServer,
) -> None:
    account_id = new_account(served, app, mailbox, "imap")
    other = oauth_dovecot.add_user(f"o{secrets.token_hex(4)}@example.org")
    oauth_server.add_user(other.username, email=other.username)
    body = {"return_to": FRONTEND}
    answer = served.http.post(f"/v1/accounts/{account_id}/reauthorize", json=body)
    url = answer.json()["authorization_url"].replace(
        f"login_hint={quote(mailbox.username)}", f"login_hint={quote(other.username)}"
    )
    assert quote(other.username) in url  # the user picks another account at the provider
    landed = sign_in(served, httpx.Response(200, json={"authorization_url": url}))
    assert landed["error"] == ["oauth2-wrong-mailbox"], landed


def test_a_tampered_replayed_or_expired_state_is_refused(
    served: Served, app: dict[str, Any], mailbox: MailUser
) -> None:
    callback = f"{served.base}/v1/oauth2/callback"
    for query in ("", "?state=made-up&code=x", "?code=x"):
        answer = served.browser.get(callback + query, follow_redirects=False)
        assert_problem(answer, 400, "oauth2-state-invalid")

    body = {"return_to": FRONTEND, "login_hint": mailbox.username}
    start = served.http.post(f"/v1/oauth2/apps/{app['id']}/authorize", json=body)
    back = served.browser.get(start.json()["authorization_url"], follow_redirects=False)
    to_mailgate = back.headers["location"]
    done = served.browser.get(to_mailgate, follow_redirects=False)
    assert done.status_code == 303 and "account_id=" in done.headers["location"]
    replayed = served.browser.get(to_mailgate, follow_redirects=False)
    assert_problem(replayed, 400, "oauth2-state-invalid")

    start = served.http.post(f"/v1/oauth2/apps/{app['id']}/authorize", json=body)
    back = served.browser.get(start.json()["authorization_url"], follow_redirects=False)
    with served.gw.engine.begin() as connection:  # ten minutes later
        connection.execute(update(OAuthSignin).values(expires_at=utcnow()))
    late = served.browser.get(back.headers["location"], follow_redirects=False)
    assert_problem(late, 400, "oauth2-state-invalid")


@pytest.mark.parametrize(
    "return_to",
    [
        "https://evil.example/",
        "https://frontend.example.evil.example/signed-in",
        "https://frontend.example/signed-inx",
        "http://frontend.example/signed-in",
        "https://frontend.example@evil.example/signed-in",
    ],
)
def test_a_return_to_outside_the_allow_list_is_refused(
    served: Served, app: dict[str, Any], return_to: str
) -> None:
    answer = served.http.post(
        f"/v1/oauth2/apps/{app['id']}/authorize", json={"return_to": return_to}
    )
    problem = assert_problem(answer, 422, "validation-error")
    assert "return_to" in str(problem)


def test_a_provider_refusal_comes_back_to_the_frontend(
    served: Served, app: dict[str, Any], oauth_server: OAuthServer
) -> None:
    """No user approves (the server has no such login): the provider answers access_denied,
    and the browser lands on the frontend with the problem type."""
    monkey_user = oauth_server.next_user
    oauth_server.next_user = None
    try:
        start = served.http.post(
            f"/v1/oauth2/apps/{app['id']}/authorize", json={"return_to": FRONTEND}
        )
        landed = sign_in(served, start)
    finally:
        oauth_server.next_user = monkey_user
    assert landed["error"] == ["oauth2-provider-error"]
    assert "access_denied" in landed["error_description"][0]


def test_two_processes_refreshing_at_once_make_one_refresh(
    served: Served,
    app: dict[str, Any],
    mailbox: MailUser,
    oauth_server: OAuthServer,
    tmp_path: Path,
    database_url: str,
) -> None:
    account_id = new_account(served, app, mailbox, "imap")
    _expire_access_token(served.gw, account_id)
    other = Gateway.from_settings(make_settings(tmp_path, database_url))
    try:
        sources = [
            AccountTokens(gw.engine, gw.passwords, gw.oauth2, account_id)
            for gw in (served.gw, other)
            for _ in range(2)
        ]
        refreshes = oauth_server.refresh_count
        with ThreadPoolExecutor(len(sources)) as pool:
            tokens = list(pool.map(lambda source: source(None), sources))
    finally:
        other.close()
    assert oauth_server.refresh_count == refreshes + 1
    assert len(set(tokens)) == 1
    assert subjects(served, account_id) == []


def test_bring_your_own_token(
    served: Served,
    app: dict[str, Any],
    mailbox: MailUser,
    oauth_server: OAuthServer,
    oauth_dovecot: DovecotServer,
) -> None:
    tokens = oauth_server.issue_tokens(mailbox.username, app["client_id"])
    body = {
        "protocol": "imap",
        "username": mailbox.username,
        "auth": {
            "type": "oauth2",
            "app_id": app["id"],
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
        },
    }
    made = served.http.post("/v1/accounts", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["port"] == oauth_dovecot.imap_port  # the app's server
    oauth_dovecot.deliver(mailbox, dated(1))
    assert subjects(served, made.json()["id"]) == ["Message 0"]

    bad = {**body, "auth": {"type": "oauth2", "app_id": app["id"], "access_token": "nope"}}
    assert_problem(served.http.post("/v1/accounts", json=bad), 422, "mailbox-auth-failed")
    unknown = {**body, "auth": {**body["auth"], "app_id": "oap_nope"}}
    assert_problem(served.http.post("/v1/accounts", json=unknown), 422, "validation-error")


def test_deleting_an_account_revokes_its_refresh_token_and_keeps_no_secret(
    served: Served, app: dict[str, Any], mailbox: MailUser, oauth_server: OAuthServer
) -> None:
    account_id = new_account(served, app, mailbox, "pop3")
    tokens = AccountTokens(served.gw.engine, served.gw.passwords, served.gw.oauth2, account_id)
    with Session(served.gw.engine) as session:
        row = session.get(AccountToken, account_id)
        assert row is not None and row.refresh_token_encrypted is not None
        refresh = served.gw.passwords.decrypt(row.refresh_token_encrypted)
    access = tokens(None)
    secrets_in_clear = [access, refresh, app["client_secret"]]
    assert _rows_holding(served.gw, secrets_in_clear) == []

    assert served.http.delete(f"/v1/accounts/{account_id}").status_code == 204
    record = oauth_server.token_record(refresh)
    assert record is not None and record.refresh_revoked
    with Session(served.gw.engine) as session:
        assert session.get(AccountToken, account_id) is None
        assert session.exec(select(Account).where(col(Account.id) == account_id)).first() is None
    assert served.http.delete(f"/v1/oauth2/apps/{app['id']}").status_code == 204


def test_an_app_in_use_cannot_be_deleted_and_never_shows_its_secret(
    served: Served, app: dict[str, Any], mailbox: MailUser
) -> None:
    new_account(served, app, mailbox, "imap")
    assert_problem(served.http.delete(f"/v1/oauth2/apps/{app['id']}"), 409, "in-use")
    listed = served.http.get("/v1/oauth2/apps").text
    assert app["client_secret"] not in listed and '"has_client_secret":true' in listed
    changed = served.http.patch(f"/v1/oauth2/apps/{app['id']}", json={"name": "Renamed"})
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed"


def _expire_access_token(gw: Gateway, account_id: str) -> None:
    with gw.engine.begin() as connection:
        connection.execute(
            update(AccountToken)
            .where(col(AccountToken.account_id) == account_id)
            .values(expires_at=utcnow())
        )


def _rows_holding(gw: Gateway, needles: list[str]) -> list[str]:
    """Every table row whose text holds one of ``needles`` in clear."""
    found = []
    with gw.engine.connect() as connection:
        for table in sa.inspect(gw.engine).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                text = " ".join(str(value) for value in row)
                found += [f"{table}: {needle[:6]}…" for needle in needles if needle in text]
    return found
