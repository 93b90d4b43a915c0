"""Talking to an OAuth2 provider: the authorization URL (PKCE S256, RFC 7636), the token
endpoint (authorization code, refresh; RFC 6749 sections 4.1.3 and 6), userinfo, revocation
(RFC 7009), and what an id_token says.

The provider's URLs are a tenant's input like a webhook URL: each call is checked by the
mailbox address policy (MAILGATE_ALLOW_PRIVATE_MAILBOXES) and goes to exactly the addresses
checked (gateway.outbound). The client authenticates with ``client_secret_post``, which
Google, Microsoft and RFC 6749 section 2.3.1 servers accept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from socket import getaddrinfo
from typing import Any
from urllib.parse import urlencode

import httpx

from mailgate.domain.addresses import Resolver
from mailgate.domain.errors import InvalidRequest
from mailgate.gateway.outbound import PinnedHttp, check_url
from mailgate.store.models import utcnow

ANSWER_LIMIT = 64 * 1024


class ProviderRefused(Exception):
    """The token endpoint answered an OAuth2 error (``invalid_grant``: consent revoked or
    expired, the refresh token already used)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description = error, description


class ProviderUnavailable(Exception):
    """The provider could not be reached or did not answer as OAuth2 says."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    id_token: str | None = None


@dataclass(frozen=True)
class Client:
    """One app's credentials at its provider."""

    client_id: str
    client_secret: str | None
    token_url: str


def pkce_pair() -> tuple[str, str]:
    """A code verifier (43 characters of base64url, 256 random bits) and its S256 challenge."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(base: str, params: dict[str, str]) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode(params)}"


def id_token_claims(id_token: str | None) -> dict[str, Any]:
    """The claims of an id_token received straight from the token endpoint over TLS, where
    OpenID Connect Core section 3.1.3.7 lets the TLS server check stand for the signature
    check. Not a JWT: no claims."""
    if not id_token or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


class Provider:
    """Calls to providers, each to the checked addresses of its URL."""

    def __init__(
        self, allow_private: bool, timeout: float = 15.0, resolver: Resolver = getaddrinfo
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.http = PinnedHttp(timeout)

    def check(self, url: str, what: str) -> None:
        """Refuse a provider URL as a webhook URL is refused (at save)."""
        check_url(
            url,
            self.allow_private,
            what=what,
            setting="MAILGATE_ALLOW_PRIVATE_MAILBOXES=true",
            resolve_now=not self.allow_private,
            resolver=self.resolver,
        )

    def exchange_code(self, client: Client, code: str, verifier: str, redirect_uri: str) -> Tokens:
        return self._token(
            client,
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
            },
        )

    def refresh(self, client: Client, refresh_token: str) -> Tokens:
        tokens = self._token(
            client, {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        if tokens.refresh_token is None:  # no rotation: the old one stays good (RFC 6749 6)
            return Tokens(tokens.access_token, refresh_token, tokens.expires_at, tokens.id_token)
        return tokens

    def userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        answer = self._call("GET", url, None, {"authorization": f"Bearer {access_token}"})
        if answer[0] != 200 or not isinstance(answer[1], dict):
            raise ProviderUnavailable(f"the userinfo endpoint answered HTTP {answer[0]}")
        return answer[1]

    def revoke(self, client: Client, url: str, token: str) -> None:
        """Revoke ``token`` (RFC 7009); raises ProviderUnavailable when that failed."""
        form = {"token": token, "token_type_hint": "refresh_token", **_client_auth(client)}
        status, _ = self._call("POST", url, urlencode(form).encode(), _FORM)
        if status != 200:
            raise ProviderUnavailable(f"the revocation endpoint answered HTTP {status}")

    def _token(self, client: Client, form: dict[str, str]) -> Tokens:
        body = urlencode({**form, **_client_auth(client)}).encode("ascii")
        status, answer = self._call("POST", client.token_url, body, _FORM)
        if not isinstance(answer, dict):
            raise ProviderUnavailable(f"the token endpoint answered HTTP {status} without JSON")
        if status != 200 or "error" in answer:
            error = str(answer.get("error") or f"http_{status}")[:100]
            raise ProviderRefused(error, str(answer.get("error_description") or "")[:300])
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise ProviderUnavailable("the token endpoint answered without an access_token")
        refresh = answer.get("refresh_token")
        expires_in = answer.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float | str) and str(expires_in).isdigit():
            expires_at = utcnow() + timedelta(seconds=int(expires_in))
        id_token = answer.get("id_token")
        return Tokens(
            access,
            refresh if isinstance(refresh, str) and refresh else None,
            expires_at,
            id_token if isinstance(id_token, str) else None,
        )

    def _call(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, Any]:
        try:
            target = check_url(
                url,
                self.allow_private,
                what="OAuth2 provider",
                setting="MAILGATE_ALLOW_PRIVATE_MAILBOXES=true",
                resolve_now=True,
                resolver=self.resolver,
            )
        except InvalidRequest as exc:
            raise ProviderUnavailable(exc.detail) from None
        try:
            with self.http.stream(
                method, target, body, {"accept": "application/json", **headers}
            ) as response:
                raw = b""
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > ANSWER_LIMIT:
                        raise ProviderUnavailable("the provider's answer is too large")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{target.host} cannot be reached ({exc})") from None
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def close(self) -> None:
        self.http.close()


_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _client_auth(client: Client) -> dict[str, str]:
    auth = {"client_id": client.client_id}
    if client.client_secret:
        auth["client_secret"] = client.client_secret
    return auth
