"""The OAuth2 test harness itself (issue 12): the Authlib authorization server and Dovecot's
OAuth2 logins, driven by raw protocol clients (httpx, imapclient, poplib), no Mailgate code."""

from __future__ import annotations

import base64
import json
import poplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import imapclient
import pytest
from imapclient.exceptions import LoginError

from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.oauth import (
    OAuthServer,
    b64,
    follow_authorize,
    pkce_pair,
    xoauth2_response,
)

REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"  # never contacted: the test reads Location
CHALLENGE = {"status": "401", "schemes": "bearer", "scope": "mail"}


@dataclass(frozen=True)
class WebClient:
    client_id: str
    client_secret: str


@pytest.fixture
def web_client(oauth_server: OAuthServer) -> WebClient:
    """A confidential client (as Mailgate will be) with one redirect URI, scope "mail"."""
    return WebClient(*oauth_server.register_client([REDIRECT_URI], scopes="mail"))


def authorize(
    server: OAuthServer, client: WebClient, challenge: str, login_hint: str | None
) -> httpx.URL:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "mail",
        "state": "st4te",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if login_hint is not None:
        params["login_hint"] = login_hint
    return follow_authorize(str(httpx.URL(server.authorize_url, params=params)))


def redeem(server: OAuthServer, client: WebClient, code: str, verifier: str) -> httpx.Response:
    return httpx.post(
        server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client.client_id, client.client_secret),
    )


def code_flow(server: OAuthServer, client: WebClient, username: str) -> dict[str, Any]:
    """The whole authorization code flow with PKCE S256; the token response."""
    verifier, challenge = pkce_pair()
    callback = authorize(server, client, challenge, login_hint=username)
    response = redeem(server, client, callback.params["code"], verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def refresh(server: OAuthServer, client: WebClient, refresh_token: str) -> httpx.Response:
    return httpx.post(
        server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(client.client_id, client.client_secret),
    )


def introspect(server: OAuthServer, token: str) -> dict[str, Any]:
    response = httpx.post(
        server.introspection_url, data={"token": token}, auth=server.introspection_client
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def imap(dovecot: DovecotServer) -> imapclient.IMAPClient:
    return imapclient.IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=10)


def imap_xoauth2(dovecot: DovecotServer, username: str, token: str) -> imapclient.IMAPClient:
    client = imap(dovecot)
    client.oauth2_login(username, token)
    return client


def refused_xoauth2(dovecot: DovecotServer, username: str, token: str) -> tuple[str, list[bytes]]:
    """Log in with XOAUTH2 the way the mechanism wants a refusal handled: Dovecot sends a
    base64 JSON error challenge, the client answers it with an empty response, then NO.
    Returns the NO text and the challenges seen (the first is the empty initial one)."""
    challenges: list[bytes] = []

    def mechanism(challenge: bytes) -> bytes:
        challenges.append(challenge)
        return xoauth2_response(username, token) if len(challenges) == 1 else b""

    client = imap(dovecot)
    try:
        with pytest.raises(LoginError) as refused:
            client.sasl_login("XOAUTH2", mechanism)
    finally:
        client.shutdown()
    return str(refused.value), challenges


def pop3_xoauth2(dovecot: DovecotServer, username: str, token: str) -> poplib.POP3:
    """POP3 AUTH XOAUTH2 with an initial response; a refusal (the error challenge, answered
    with an empty line, then -ERR) raises poplib.error_proto."""
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=10)
    try:
        line = "AUTH XOAUTH2 " + b64(xoauth2_response(username, token))
        reply: bytes = pop._shortcmd(line)  # type: ignore[attr-defined]
        if reply.startswith(b"+ "):  # the error challenge, not +OK
            assert json.loads(base64.b64decode(reply[2:])) == CHALLENGE
            pop._shortcmd("")  # type: ignore[attr-defined]  # raises error_proto: the -ERR line
        assert reply.startswith(b"+OK"), reply
    except BaseException:
        pop.close()
        raise
    return pop


def wait_until_expired(server: OAuthServer, access_token: str) -> None:
    record = server.token_record(access_token)
    assert record is not None
    time.sleep(max(0.0, record.issued_at + record.expires_in - time.time()) + 0.2)


# -- the authorization server --------------------------------------------------------------------


def test_code_flow_with_pkce_issues_tokens_and_userinfo(
    oauth_server: OAuthServer, web_client: WebClient
) -> None:
    oauth_server.add_user("flow-alice", "alice@example.net")
    verifier, challenge = pkce_pair()
    callback = authorize(oauth_server, web_client, challenge, login_hint="alice@example.net")
    assert str(callback).startswith(REDIRECT_URI + "?")
    assert callback.params["state"] == "st4te"

    response = redeem(oauth_server, web_client, callback.params["code"], verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "mail"
    assert tokens["access_token"] and tokens["refresh_token"]
    assert oauth_server.token_requests[-1].grant_type == "authorization_code"
    assert oauth_server.token_requests[-1].client_id == web_client.client_id

    userinfo = httpx.get(
        oauth_server.userinfo_url, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.json() == {"sub": "flow-alice", "email": "alice@example.net"}
    assert introspect(oauth_server, tokens["access_token"])["username"] == "flow-alice"

    # a code is good once
    again = redeem(oauth_server, web_client, callback.params["code"], verifier)
    assert again.json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_refused(oauth_server: OAuthServer, web_client: WebClient) -> None:
    oauth_server.add_user("flow-bob")
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    callback = authorize(oauth_server, web_client, challenge, login_hint="flow-bob")
    response = redeem(oauth_server, web_client, callback.params["code"], other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_public_client_redeems_with_pkce_alone(oauth_server: OAuthServer) -> None:
    oauth_server.add_user("flow-pat")
    client_id = oauth_server.register_public_client([REDIRECT_URI])
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": "flow-pat",
    }
    code = follow_authorize(str(httpx.URL(oauth_server.authorize_url, params=params))).params
    form = {"grant_type": "authorization_code", "code": code["code"], "redirect_uri": REDIRECT_URI}
    missing = httpx.post(oauth_server.token_url, data={**form, "client_id": client_id})
    assert missing.json()["error"] == "invalid_request"  # no code_verifier
    response = httpx.post(
        oauth_server.token_url, data={**form, "client_id": client_id, "code_verifier": verifier}
    )
    assert response.status_code == 200, response.text
    assert oauth_server.token_record(response.json()["access_token"]) is not None


def test_pkce_s256_is_required(oauth_server: OAuthServer, web_client: WebClient) -> None:
    oauth_server.add_user("flow-carol")
    base = {
        "response_type": "code",
        "client_id": web_client.client_id,
        "redirect_uri": REDIRECT_URI,
        "login_hint": "flow-carol",
    }
    without = follow_authorize(str(httpx.URL(oauth_server.authorize_url, params=base)))
    assert without.params["error"] == "invalid_request"
    plain = follow_authorize(
        str(
            httpx.URL(
                oauth_server.authorize_url,
                params={**base, "code_challenge": "x" * 43, "code_challenge_method": "plain"},
            )
        )
    )
    assert plain.params["error"] == "invalid_request"


def test_who_approves(oauth_server: OAuthServer, web_client: WebClient) -> None:
    """login_hint names the user; without one, next_user; with neither, access_denied."""
    oauth_server.add_user("flow-dave")
    _, challenge = pkce_pair()
    denied = authorize(oauth_server, web_client, challenge, login_hint=None)
    assert denied.params["error"] == "access_denied"
    assert denied.params["state"] == "st4te"

    oauth_server.next_user = "flow-dave"
    try:
        callback = authorize(oauth_server, web_client, challenge, login_hint=None)
    finally:
        oauth_server.next_user = None
    assert "code" in callback.params


def test_unknown_client_or_redirect_uri_is_not_redirected(
    oauth_server: OAuthServer, web_client: WebClient
) -> None:
    _, challenge = pkce_pair()
    for client_id, redirect in [
        ("no-such-client", REDIRECT_URI),
        (web_client.client_id, "http://127.0.0.1:9/elsewhere"),
    ]:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        response = httpx.get(oauth_server.authorize_url, params=params)
        assert response.status_code == 400
        assert "location" not in response.headers


def test_introspection_requires_client_authentication(oauth_server: OAuthServer) -> None:
    oauth_server.add_user("intro-erin")
    token = oauth_server.issue_tokens("intro-erin")["access_token"]
    client_id, _ = oauth_server.introspection_client
    for auth in [None, (client_id, "wrong-secret")]:
        response = httpx.post(oauth_server.introspection_url, data={"token": token}, auth=auth)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    assert introspect(oauth_server, token)["active"] is True
    assert introspect(oauth_server, "not-a-token") == {"active": False}


def test_refresh_rotates(oauth_server: OAuthServer, web_client: WebClient) -> None:
    oauth_server.add_user("rot-frank")
    first = code_flow(oauth_server, web_client, "rot-frank")
    count = oauth_server.refresh_count

    response = refresh(oauth_server, web_client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] not in (None, first["refresh_token"])
    assert second["access_token"] != first["access_token"]
    assert oauth_server.refresh_count == count + 1

    replay = refresh(oauth_server, web_client, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert oauth_server.refresh_count == count + 1
    assert oauth_server.token_requests[-1].error == "invalid_grant"
    assert introspect(oauth_server, first["access_token"]) == {"active": False}
    assert introspect(oauth_server, second["access_token"])["active"] is True

    # only the client it was issued to can refresh it
    other = WebClient(*oauth_server.register_client([REDIRECT_URI]))
    assert refresh(oauth_server, other, second["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoke_user_ends_every_grant(oauth_server: OAuthServer, web_client: WebClient) -> None:
    oauth_server.add_user("rev-gina")
    first = code_flow(oauth_server, web_client, "rev-gina")
    second = oauth_server.issue_tokens("rev-gina", web_client.client_id)
    assert oauth_server.revoke_user("rev-gina") == 2
    for tokens in (first, second):
        assert introspect(oauth_server, tokens["access_token"]) == {"active": False}
        assert refresh(oauth_server, web_client, tokens["refresh_token"]).json() == {
            "error": "invalid_grant"
        }
    userinfo = httpx.get(
        oauth_server.userinfo_url, headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert userinfo.status_code == 401


def test_revocation_endpoint(oauth_server: OAuthServer, web_client: WebClient) -> None:
    """RFC 7009: revoking a refresh token ends its access token too; an access token alone
    leaves the refresh token usable."""
    oauth_server.add_user("rev-hank")
    auth = (web_client.client_id, web_client.client_secret)
    tokens = oauth_server.issue_tokens("rev-hank", web_client.client_id)
    response = httpx.post(
        oauth_server.revocation_url,
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
        auth=auth,
    )
    assert response.status_code == 200
    assert introspect(oauth_server, tokens["access_token"]) == {"active": False}
    refreshed = refresh(oauth_server, web_client, tokens["refresh_token"]).json()

    response = httpx.post(
        oauth_server.revocation_url, data={"token": refreshed["refresh_token"]}, auth=auth
    )
    assert response.status_code == 200
    assert introspect(oauth_server, refreshed["access_token"]) == {"active": False}
    assert refresh(oauth_server, web_client, refreshed["refresh_token"]).status_code == 400
    unauthenticated = httpx.post(oauth_server.revocation_url, data={"token": "x"})
    assert unauthenticated.status_code == 401


def test_outage_refuses_connections_and_comes_back_on_the_same_port(
    oauth_server: OAuthServer,
) -> None:
    metadata = f"{oauth_server.base_url}/.well-known/oauth-authorization-server"
    with oauth_server.outage(), pytest.raises(httpx.ConnectError):
        httpx.get(metadata)
    assert httpx.get(metadata).json()["token_endpoint"] == oauth_server.token_url


# -- Dovecot's OAuth2 logins -------------------------------------------------------------------


def test_default_dovecot_offers_no_oauth2(dovecot: DovecotServer) -> None:
    with imap(dovecot) as client:
        assert b"AUTH=XOAUTH2" not in client.capabilities()


def test_imap_xoauth2_and_oauthbearer_log_in(
    oauth_dovecot: DovecotServer,
    oauth_server: OAuthServer,
    oauth_user: MailUser,
    web_client: WebClient,
) -> None:
    oauth_dovecot.deliver(oauth_user, [b"Subject: hi\r\n\r\nhello\r\n"])
    token = code_flow(oauth_server, web_client, oauth_user.username)["access_token"]
    with imap(oauth_dovecot) as client:
        assert {b"AUTH=XOAUTH2", b"AUTH=OAUTHBEARER"} <= set(client.capabilities())
        client.oauth2_login(oauth_user.username, token)
        assert client.select_folder("INBOX")[b"EXISTS"] == 1
    with imap(oauth_dovecot) as client:
        client.oauthbearer_login(oauth_user.username, token)
        assert client.select_folder("INBOX")[b"EXISTS"] == 1


def test_pop3_xoauth2_logs_in(
    oauth_dovecot: DovecotServer, oauth_server: OAuthServer, oauth_user: MailUser
) -> None:
    oauth_dovecot.deliver(oauth_user, [b"Subject: hi\r\n\r\nhello\r\n"])
    token = oauth_server.issue_tokens(oauth_user.username)["access_token"]
    pop = pop3_xoauth2(oauth_dovecot, oauth_user.username, token)
    assert pop.stat()[0] == 1
    pop.quit()


def test_each_login_is_introspected(
    oauth_dovecot: DovecotServer, oauth_server: OAuthServer, oauth_user: MailUser
) -> None:
    token = oauth_server.issue_tokens(oauth_user.username)["access_token"]
    before = oauth_server.introspection_count
    for _ in range(2):
        imap_xoauth2(oauth_dovecot, oauth_user.username, token).logout()
    assert oauth_server.introspection_count == before + 2


def test_refresh_retires_the_old_access_token(
    oauth_dovecot: DovecotServer,
    oauth_server: OAuthServer,
    oauth_user: MailUser,
    web_client: WebClient,
) -> None:
    old = code_flow(oauth_server, web_client, oauth_user.username)
    new = refresh(oauth_server, web_client, old["refresh_token"]).json()
    text, _ = refused_xoauth2(oauth_dovecot, oauth_user.username, old["access_token"])
    assert "[AUTHENTICATIONFAILED]" in text
    imap_xoauth2(oauth_dovecot, oauth_user.username, new["access_token"]).logout()


def test_expired_token_is_refused_with_the_error_challenge(
    oauth_dovecot: DovecotServer,
    oauth_server: OAuthServer,
    oauth_user: MailUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(oauth_server, "token_lifetime", 2)
    tokens = oauth_server.issue_tokens(oauth_user.username)
    assert tokens["expires_in"] == 2
    imap_xoauth2(oauth_dovecot, oauth_user.username, tokens["access_token"]).logout()
    wait_until_expired(oauth_server, tokens["access_token"])

    text, challenges = refused_xoauth2(oauth_dovecot, oauth_user.username, tokens["access_token"])
    assert "[AUTHENTICATIONFAILED]" in text
    assert json.loads(challenges[-1]) == CHALLENGE
    # imapclient's oauth2_login answers the challenge with its credentials again: still NO
    with imap(oauth_dovecot) as client, pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        client.oauth2_login(oauth_user.username, tokens["access_token"])
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        pop3_xoauth2(oauth_dovecot, oauth_user.username, tokens["access_token"])


def test_revoked_users_token_is_refused(
    oauth_dovecot: DovecotServer, oauth_server: OAuthServer, oauth_user: MailUser
) -> None:
    token = oauth_server.issue_tokens(oauth_user.username)["access_token"]
    imap_xoauth2(oauth_dovecot, oauth_user.username, token).logout()
    oauth_server.revoke_user(oauth_user.username)
    text, _ = refused_xoauth2(oauth_dovecot, oauth_user.username, token)
    assert "[AUTHENTICATIONFAILED]" in text
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        pop3_xoauth2(oauth_dovecot, oauth_user.username, token)


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(lambda user, tokens, other: other["access_token"], id="another-users"),
        pytest.param(lambda user, tokens, other: tokens["refresh_token"], id="refresh-token"),
        pytest.param(lambda user, tokens, other: user.password, id="password"),
    ],
)
def test_only_the_users_access_token_logs_in(
    oauth_dovecot: DovecotServer,
    oauth_server: OAuthServer,
    oauth_user: MailUser,
    credential: Callable[[MailUser, dict[str, Any], dict[str, Any]], str],
) -> None:
    other_user = oauth_dovecot.add_user()
    oauth_server.add_user(other_user.username)
    tokens = oauth_server.issue_tokens(oauth_user.username)
    other = oauth_server.issue_tokens(other_user.username)
    text, _ = refused_xoauth2(
        oauth_dovecot, oauth_user.username, credential(oauth_user, tokens, other)
    )
    assert "[AUTHENTICATIONFAILED]" in text


def test_passwords_still_log_in(oauth_dovecot: DovecotServer, oauth_user: MailUser) -> None:
    with imap(oauth_dovecot) as client:
        client.login(oauth_user.username, oauth_user.password)
    with imap(oauth_dovecot) as client:
        client.plain_login(oauth_user.username, oauth_user.password)
    pop = poplib.POP3(oauth_dovecot.host, oauth_dovecot.pop3_port, timeout=10)
    pop.user(oauth_user.username)
    pop.pass_(oauth_user.password)
    pop.quit()
    with imap(oauth_dovecot) as client, pytest.raises(LoginError):
        client.login(oauth_user.username, "wrong-password")


def test_authorization_server_down_is_a_temporary_failure(
    oauth_dovecot: DovecotServer, oauth_server: OAuthServer, oauth_user: MailUser
) -> None:
    token = oauth_server.issue_tokens(oauth_user.username)["access_token"]
    with (
        oauth_server.outage(),
        imap(oauth_dovecot) as client,
        pytest.raises(LoginError, match=r"\[UNAVAILABLE\]"),
    ):
        client.oauth2_login(oauth_user.username, token)
    imap_xoauth2(oauth_dovecot, oauth_user.username, token).logout()
