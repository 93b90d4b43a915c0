"""A real OAuth2 authorization server for the tests of OAuth2 mailbox logins (issue 12).

Authlib 1.9's server side (Flask integration) does the protocol: the authorization code grant
with PKCE (S256 only, required of every client), the refresh token grant with rotation, RFC 7662
introspection (client authentication required) and RFC 7009 revocation. This module only
stores clients, codes and tokens in memory and serves the Flask app from a werkzeug server in a
background thread on 127.0.0.1, so Dovecot (``driver = oauth2``, see ``DovecotServer``) can
validate tokens against it by introspection and Mailgate can run the browser flow against it.

Endpoints, under ``base_url``: ``GET /authorize`` (auto-approves a test user, no page),
``POST /token``, ``POST /introspect``, ``POST /revoke``, ``GET /userinfo`` (Bearer access token
-> ``{"sub", "email"}``) and ``GET /.well-known/oauth-authorization-server`` (RFC 8414).
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx
from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidRequestError,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .lifecycle import Lifecycle
from .net import LOOPBACK

START_TIMEOUT = 5.0
CODE_LIFETIME = 600  # seconds an authorization code can be redeemed (RFC 6749 4.1.2: 10 min)
CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

TokenKind = Literal["access_token", "refresh_token"]


class OAuthServerError(RuntimeError):
    """The authorization server did not start as expected."""


# -- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthUser:
    """A resource owner. ``username`` is what introspection reports as ``username`` (Dovecot's
    ``username_attribute``), so it must be the Dovecot user's name; ``email`` is what
    ``/userinfo`` reports."""

    username: str
    email: str

    def get_user_id(self) -> str:
        return self.username


@dataclass
class OAuthClient(ClientMixin):  # type: ignore[misc]
    """A registered client. ``client_secret`` None: a public client (token endpoint auth
    method "none", PKCE alone); ``introspector``: a resource server (Dovecot) that may only
    introspect access tokens and uses no grant."""

    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...] = ()
    scope: str = ""
    grant_types: frozenset[str] = frozenset({"authorization_code", "refresh_token"})
    introspector: bool = False

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """No scope asked: all of the client's (RFC 6749 3.3 default); a scope the client was
        not registered for: None, which Authlib answers with ``invalid_scope``."""
        if not scope:
            return self.scope
        wanted = scope_to_list(scope)
        if not set(wanted) <= set(scope_to_list(self.scope)):
            return None
        return str(list_to_scope(wanted))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(
            self.client_secret, client_secret
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client_secret is None:
            return method == "none"
        return method in CONFIDENTIAL_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    username: str
    code_challenge: str | None
    code_challenge_method: str | None
    issued_at: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class TokenRecord:
    """One grant's token pair as issued; revocation marks it, nothing is deleted."""

    client_id: str
    username: str
    scope: str
    access_token: str
    refresh_token: str | None
    expires_in: int
    issued_at: float = field(default_factory=time.time)
    access_revoked: bool = False
    refresh_revoked: bool = False

    def revoke(self) -> None:
        self.access_revoked = self.refresh_revoked = True


@dataclass(frozen=True)
class TokenRequest:
    """One request to ``/token`` as the server saw it (``error`` None: tokens were issued)."""

    grant_type: str | None
    client_id: str | None
    status: int
    error: str | None


class Credential(TokenMixin):  # type: ignore[misc]
    """One token string of a ``TokenRecord`` as Authlib sees it: an access token expires and is
    revoked on its own; a refresh token does not expire here (revocation ends it)."""

    def __init__(self, store: _Store, record: TokenRecord, kind: TokenKind) -> None:
        self.store, self.record, self.kind = store, record, kind

    def check_client(self, client: OAuthClient) -> bool:
        return self.record.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return self.record.expires_in

    def expires_at(self) -> float:
        return self.record.issued_at + self.record.expires_in

    def is_expired(self) -> bool:
        return self.kind == "access_token" and time.time() >= self.expires_at()

    def is_revoked(self) -> bool:
        if self.kind == "access_token":
            return self.record.access_revoked
        return self.record.refresh_revoked

    def get_user(self) -> OAuthUser | None:
        return self.store.users.get(self.record.username)

    def get_client(self) -> OAuthClient | None:
        return self.store.clients.get(self.record.client_id)


class _Store:
    """Everything the server knows; the lock guards it (werkzeug serves from many threads)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, OAuthUser] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.by_access: dict[str, TokenRecord] = {}
        self.by_refresh: dict[str, TokenRecord] = {}
        self.token_requests: list[TokenRequest] = []
        self.introspections = 0

    def add_token(self, record: TokenRecord) -> None:
        with self.lock:
            self.by_access[record.access_token] = record
            if record.refresh_token is not None:
                self.by_refresh[record.refresh_token] = record

    def find(self, token: str, hint: str | None = None) -> Credential | None:
        """The credential *token* is, searching the hinted kind first (RFC 7662/7009)."""
        kinds: tuple[TokenKind, TokenKind] = (
            ("refresh_token", "access_token")
            if hint == "refresh_token"
            else ("access_token", "refresh_token")
        )
        with self.lock:
            for kind in kinds:
                table = self.by_access if kind == "access_token" else self.by_refresh
                if (record := table.get(token)) is not None:
                    return Credential(self, record, kind)
        return None


# -- Authlib glue --------------------------------------------------------------------------------


class _Authz(AuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask authorization server with our store at hand for the grants."""

    def __init__(self, app: Flask, store: _Store) -> None:
        self.store = store
        super().__init__(app, query_client=store.clients.get, save_token=self._save)

    def _save(self, token: dict[str, Any], req: Any) -> None:
        self.store.add_token(
            TokenRecord(
                client_id=req.client.get_client_id(),
                username=req.user.username,
                scope=token.get("scope", ""),
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                expires_in=int(token["expires_in"]),
            )
        )


class _S256Required(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client and S256 only (OAuth 2.1, RFC 9700 2.1.1): Authlib's extension
    alone accepts "plain" and lets confidential clients skip PKCE."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
    server: _Authz

    def save_authorization_code(self, code: str, req: Any) -> None:
        data = req.payload.data
        with self.server.store.lock:
            self.server.store.codes[code] = AuthorizationCode(
                code=code,
                client_id=req.client.get_client_id(),
                redirect_uri=req.payload.redirect_uri,
                scope=req.scope,
                username=req.user.username,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
            )

    def query_authorization_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        with self.server.store.lock:
            item = self.server.store.codes.get(code)
        if item is None or item.client_id != client.get_client_id():
            return None
        if time.time() > item.issued_at + CODE_LIFETIME:
            return None
        return item

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        with self.server.store.lock:
            self.server.store.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> OAuthUser | None:
        return self.server.store.users.get(authorization_code.username)


class _RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Rotation: each refresh issues a new refresh token and revokes the old pair."""

    TOKEN_ENDPOINT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: _Authz

    def authenticate_refresh_token(self, refresh_token: str) -> Credential | None:
        credential = self.server.store.find(refresh_token, "refresh_token")
        if credential is None or credential.kind != "refresh_token" or credential.is_revoked():
            return None
        return credential

    def authenticate_user(self, refresh_token: Credential) -> OAuthUser | None:
        return refresh_token.get_user()

    def revoke_old_credential(self, refresh_token: Credential) -> None:
        with self.server.store.lock:
            refresh_token.record.revoke()


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)
    server: _Authz

    def create_endpoint_response(self, req: Any) -> Any:
        with self.server.store.lock:
            self.server.store.introspections += 1
        return super().create_endpoint_response(req)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Credential | None:
        return self.server.store.find(token_string, token_type_hint)

    def check_permission(self, token: Credential, client: OAuthClient, req: Any) -> bool:
        """A resource server (Dovecot) learns about access tokens only, so a refresh token
        never logs in to a mailbox (RFC 7662 2.2 lets the answer depend on who asks); a client
        may introspect its own tokens."""
        if client.introspector:
            return token.kind == "access_token"
        return token.check_client(client)

    def introspect_token(self, token: Credential) -> dict[str, Any]:
        record = token.record
        user = token.get_user()
        return {
            "active": True,
            "client_id": record.client_id,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "username": record.username,
            "sub": record.username,
            "email": user.email if user else None,
            "scope": record.scope,
            "iat": int(record.issued_at),
            **({"exp": int(token.expires_at())} if token.kind == "access_token" else {}),
        }


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
    server: _Authz

    def query_token(self, token_string: str, token_type_hint: str | None) -> Credential | None:
        return self.server.store.find(token_string, token_type_hint)

    def revoke_token(self, token: Credential, req: Any) -> None:
        """An access token alone, or a refresh token with its access token (RFC 7009 2.1)."""
        with self.server.store.lock:
            if token.kind == "access_token":
                token.record.access_revoked = True
            else:
                token.record.revoke()


class _BearerValidator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, store: _Store) -> None:
        super().__init__()
        self.store = store

    def authenticate_token(self, token_string: str) -> Credential | None:
        credential = self.store.find(token_string, "access_token")
        return credential if credential and credential.kind == "access_token" else None


class _OneRequestPerConnection(WSGIRequestHandler):
    """HTTP/1.0: every connection closes after its response, so after ``down()`` no kept-alive
    connection (Dovecot's HTTP client pools them) still reaches a handler thread."""

    protocol_version = "HTTP/1.0"


# -- the server ------------------------------------------------------------------------------------


class OAuthServer(Lifecycle):
    """The authorization server: a context manager (start/stop), knobs are plain attributes.

    ``token_lifetime`` (seconds, default 3600) applies to tokens issued from then on; tests
    that lower it can use ``monkeypatch.setattr(server, "token_lifetime", 2)``. The authorize
    endpoint approves at once as the user named by ``login_hint`` (username or email), else as
    ``next_user`` (a username), else answers ``access_denied`` to the redirect URI.
    """

    def __init__(self, *, token_lifetime: int = 3600, host: str = LOOPBACK) -> None:
        self.host = host
        self.port = 0
        self.token_lifetime = token_lifetime
        self.next_user: str | None = None
        self._store = _Store()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # the resource server's (Dovecot's) credentials: (client_id, client_secret)
        self.introspection_client = self.register_client((), scopes="")
        self._store.clients[self.introspection_client[0]].grant_types = frozenset()
        self._store.clients[self.introspection_client[0]].introspector = True
        # the client issue_tokens() uses when none is named: (client_id, client_secret)
        self.default_client = self.register_client((), scopes="mail")
        self.app = self._make_app()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        if not self.port:
            raise OAuthServerError("the authorization server was never started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve on a free port (first start) or the same port as before (after stop())."""
        if self.running:
            raise OAuthServerError("the authorization server is already running")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                server = make_server(
                    self.host,
                    self.port,
                    self.app,
                    threaded=True,
                    request_handler=_OneRequestPerConnection,
                )
                break
            except OSError as exc:  # the old port taken meanwhile: retry, then give up
                if time.monotonic() > deadline:
                    raise OAuthServerError(f"cannot listen on port {self.port}: {exc}") from exc
                time.sleep(0.05)
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = f"oauth-server-{self.port}"
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (connections are then refused); no-op when stopped."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # "the authorization server is unavailable", in the words of the tests
    down = stop
    up = start

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Down for the ``with`` block, then up again on the same port."""
        self.down()
        try:
            yield
        finally:
            self.up()

    # -- endpoints -------------------------------------------------------------------------------

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.base_url}/introspect"

    @property
    def revocation_url(self) -> str:
        return f"{self.base_url}/revoke"

    @property
    def userinfo_url(self) -> str:
        return f"{self.base_url}/userinfo"

    @property
    def dovecot_introspection_url(self) -> str:
        """The introspection URL with the introspection client's credentials in it, as
        Dovecot's ``introspection_url`` wants them (it sends them as HTTP Basic)."""
        client_id, secret = self.introspection_client
        return f"http://{quote(client_id)}:{quote(secret)}@{self.host}:{self.port}/introspect"

    # -- users, clients, tokens ------------------------------------------------------------------

    def add_user(self, username: str, email: str | None = None) -> OAuthUser:
        """A resource owner; *email* defaults to the username if it has an @, else
        ``<username>@example.org``."""
        if email is None:
            email = username if "@" in username else f"{username}@example.org"
        user = OAuthUser(username, email)
        with self._store.lock:
            if username in self._store.users:
                raise ValueError(f"user {username!r} exists already")
            self._store.users[username] = user
        return user

    def register_client(
        self, redirect_uris: list[str] | tuple[str, ...], scopes: str = "mail"
    ) -> tuple[str, str]:
        """A confidential client (client_secret_basic or client_secret_post at the token,
        revocation and introspection endpoints); returns (client_id, client_secret)."""
        client = self._add_client(tuple(redirect_uris), scopes, public=False)
        assert client.client_secret is not None
        return client.client_id, client.client_secret

    def register_public_client(
        self, redirect_uris: list[str] | tuple[str, ...], scopes: str = "mail"
    ) -> str:
        """A public client (no secret: it sends client_id, PKCE protects the code)."""
        return self._add_client(tuple(redirect_uris), scopes, public=True).client_id

    def issue_tokens(
        self,
        username: str,
        client_id: str | None = None,
        scope: str | None = None,
        *,
        expires_in: int | None = None,
    ) -> dict[str, Any]:
        """Mint a token pair as the token endpoint would, without the browser flow ("bring
        your own token"); the same dict the token endpoint answers. Only *client_id* (default:
        ``default_client``) can refresh it."""
        with self._store.lock:
            client = self._store.clients[client_id or self.default_client[0]]
            user = self._store.users[username]
            token: dict[str, Any] = self._authz.generate_token(
                grant_type="authorization_code",
                client=client,
                user=user,
                scope=scope,
                expires_in=expires_in,
                include_refresh_token=True,
            )
            self._store.add_token(
                TokenRecord(
                    client_id=client.client_id,
                    username=username,
                    scope=token.get("scope", ""),
                    access_token=token["access_token"],
                    refresh_token=token.get("refresh_token"),
                    expires_in=int(token["expires_in"]),
                )
            )
        return token

    def revoke_user(self, username: str) -> int:
        """Revoke every grant of *username* (access and refresh tokens, unused codes), as when
        the user withdraws consent; return how many token pairs were live."""
        with self._store.lock:
            live = 0
            for record in self._store.by_access.values():
                if record.username == username:
                    live += not (record.access_revoked and record.refresh_revoked)
                    record.revoke()
            for code in [c for c, item in self._store.codes.items() if item.username == username]:
                del self._store.codes[code]
        return live

    def token_record(self, token: str) -> TokenRecord | None:
        """What the server holds about an access or refresh token (for assertions)."""
        credential = self._store.find(token)
        return credential.record if credential else None

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every request to /token so far, oldest first (a copy)."""
        with self._store.lock:
            return list(self._store.token_requests)

    @property
    def refresh_count(self) -> int:
        """How many refresh_token grants succeeded."""
        return sum(
            1
            for entry in self.token_requests
            if entry.grant_type == "refresh_token" and entry.error is None
        )

    @property
    def introspection_count(self) -> int:
        """How many introspection requests arrived (Dovecot makes one per OAuth2 login)."""
        with self._store.lock:
            return self._store.introspections

    # -- internals -------------------------------------------------------------------------------

    def _add_client(
        self, redirect_uris: tuple[str, ...], scope: str, *, public: bool
    ) -> OAuthClient:
        client = OAuthClient(
            client_id=f"client-{secrets.token_hex(6)}",
            client_secret=None if public else secrets.token_urlsafe(24),
            redirect_uris=redirect_uris,
            scope=scope,
        )
        with self._store.lock:
            self._store.clients[client.client_id] = client
        return client

    def _make_app(self) -> Flask:
        app = Flask(f"oauth-test-server-{id(self)}")
        store = self._store
        authz = _Authz(app, store)
        authz.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: generate_token(42),
                refresh_token_generator=lambda **_: generate_token(48),
                expires_generator=lambda client, grant_type: self.token_lifetime,
            ),
        )
        authz.register_grant(_AuthorizationCodeGrant, [_S256Required(required=True)])
        authz.register_grant(_RefreshTokenGrant)
        authz.register_endpoint(_Introspection)
        authz.register_endpoint(_Revocation)
        self._authz = authz
        protect = ResourceProtector()
        protect.register_token_validator(_BearerValidator(store))

        @app.get("/authorize")
        def authorize() -> Any:
            user = self._approving_user(request.args.get("login_hint"))
            try:
                grant = authz.get_consent_grant(end_user=user)
            except OAuth2Error as error:  # bad client or redirect URI: never redirect
                return authz.handle_error_response(None, error)
            return authz.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def token() -> Any:
            with store.lock:  # one at a time: two refreshes with one token cannot both win
                response: Response = authz.create_token_response()
                body = response.get_json(silent=True) or {}
                basic = request.authorization
                store.token_requests.append(
                    TokenRequest(
                        grant_type=request.form.get("grant_type"),
                        client_id=basic.username if basic else request.form.get("client_id"),
                        status=response.status_code,
                        error=body.get("error"),
                    )
                )
            return response

        @app.post("/introspect")
        def introspect() -> Any:
            return authz.create_endpoint_response("introspection")

        @app.post("/revoke")
        def revoke() -> Any:
            return authz.create_endpoint_response("revocation")

        @app.get("/userinfo")
        @protect()  # type: ignore[untyped-decorator]
        def userinfo() -> Any:
            credential: Credential = current_token
            user = credential.get_user()
            if user is None:
                return jsonify(error="invalid_token"), 401
            return jsonify(sub=user.username, email=user.email)

        @app.get("/.well-known/oauth-authorization-server")
        def metadata() -> Any:
            base = self.base_url
            return jsonify(
                issuer=base,
                authorization_endpoint=f"{base}/authorize",
                token_endpoint=f"{base}/token",
                introspection_endpoint=f"{base}/introspect",
                revocation_endpoint=f"{base}/revoke",
                userinfo_endpoint=f"{base}/userinfo",
                response_types_supported=["code"],
                grant_types_supported=["authorization_code", "refresh_token"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=[*CONFIDENTIAL_AUTH_METHODS, "none"],
            )

        return app

    def _approving_user(self, login_hint: str | None) -> OAuthUser | None:
        with self._store.lock:
            users = self._store.users
            if login_hint:
                for user in users.values():
                    if login_hint in (user.username, user.email):
                        return user
            return users.get(self.next_user) if self.next_user else None


# -- client-side helpers (what a mail client sends; no Mailgate code) -----------------------------


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE (code_verifier, S256 code_challenge)."""
    verifier = generate_token(64)
    return verifier, str(create_s256_code_challenge(verifier))


def follow_authorize(url: str) -> httpx.URL:
    """Play the user's browser: open the authorization URL, return where the server redirects
    (the client's redirect URI with ``code`` and ``state``, or ``error``)."""
    response = httpx.get(url, follow_redirects=False, timeout=10)
    if response.status_code != 302:
        raise OAuthServerError(f"authorize answered {response.status_code}: {response.text}")
    return httpx.URL(response.headers["location"])


def xoauth2_response(username: str, access_token: str) -> bytes:
    """The initial client response of SASL XOAUTH2 (before base64)."""
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01".encode()


def oauthbearer_response(username: str, access_token: str) -> bytes:
    """The initial client response of SASL OAUTHBEARER, RFC 7628 (before base64)."""
    authzid = username.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={authzid},\x01auth=Bearer {access_token}\x01\x01".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
