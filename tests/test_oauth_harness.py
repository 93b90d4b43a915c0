"""The OAuth2 test harness itself (issue 12): the Authlib authorization server, driven by a
raw HTTP client (httpx), no Mailgate code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.harness.oauth import (
    OAuthServer,
    follow_authorize,
    pkce_pair,
)

REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"  # never contacted: the test reads Location


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
