"""The hosted OAuth2 sign-in: an authorization URL (code flow with PKCE S256), the provider's
callback, and the browser sent back to the tenant's frontend.

The ``state`` is 256 random bits, stored only as its SHA-256 hash with the tenant, the app,
the PKCE verifier (encrypted) and where to send the browser; it works once (the callback
deletes it before anything else) and for ten minutes. An unknown, used or expired state is
refused outright (400 ``oauth2-state-invalid``): nothing says where the browser may go. Every
later failure sends the browser to ``return_to`` with ``error`` (a problem type) and
``error_description``; success sends it there with ``account_id``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlmodel import Session, col, delete

from mailgate.domain.errors import (
    InvalidRequest,
    MailgateError,
    OAuth2ProviderError,
    OAuth2StateInvalid,
    OAuth2WrongMailbox,
)
from mailgate.domain.ids import new_id
from mailgate.domain.oauth2 import AuthorizeAnswer, AuthorizeRequest, ReauthorizeRequest
from mailgate.gateway.accounts import first_refresh, load_account
from mailgate.gateway.context import Gateway
from mailgate.gateway.health_state import mark_working
from mailgate.gateway.oauth2.apps import load_app, return_to_allowed, server_of
from mailgate.gateway.oauth2.mailbox import save_account, verified_tokens
from mailgate.gateway.oauth2.provider import (
    ProviderRefused,
    ProviderUnavailable,
    Tokens,
    authorization_url,
    id_token_claims,
    pkce_pair,
)
from mailgate.gateway.oauth2.providers import PROVIDERS
from mailgate.gateway.oauth2.tokens import client_of, store_tokens
from mailgate.store.db import session_scope
from mailgate.store.models import Account, OAuthApp, OAuthSignin, as_utc, utcnow

log = logging.getLogger("mailgate.oauth2")
SIGNIN_TTL = timedelta(minutes=10)


def authorize(
    gw: Gateway,
    tenant_id: str,
    app_id: str,
    spec: AuthorizeRequest,
    account_id: str | None = None,
) -> AuthorizeAnswer:
    """Start a sign-in: the URL to send the user's browser to."""
    with Session(gw.engine) as session:
        app = load_app(session, tenant_id, app_id)
    if not return_to_allowed(app, spec.return_to):
        raise InvalidRequest("`return_to` is not in the app's `return_to_allowed`", _RETURN_TO)
    if server_of(app, spec.protocol) is None:
        raise InvalidRequest(f"the app names no {spec.protocol} server", ("body", "protocol"))
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    expires_at = utcnow() + SIGNIN_TTL
    with session_scope(gw.engine) as session:
        session.exec(delete(OAuthSignin).where(col(OAuthSignin.expires_at) < utcnow()))
        session.add(
            OAuthSignin(
                state_hash=_hash(state),
                tenant_id=tenant_id,
                app_id=app.id,
                account_id=account_id,
                protocol=spec.protocol,
                name=spec.name,
                return_to=spec.return_to,
                code_verifier_encrypted=gw.passwords.encrypt(verifier),
                expires_at=expires_at,
            )
        )
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": " ".join(json.loads(app.scopes)),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **PROVIDERS[app.provider].authorize_params,
    }
    if spec.login_hint:
        params["login_hint"] = spec.login_hint
    url = authorization_url(app.authorization_url, params)
    return AuthorizeAnswer(authorization_url=url, expires_at=expires_at)


def reauthorize(
    gw: Gateway, tenant_id: str, account_id: str, spec: ReauthorizeRequest
) -> AuthorizeAnswer:
    """Sign an OAuth2 account in again (consent revoked or expired): it keeps its id, its
    data and its webhooks; the sign-in must reach the same mailbox."""
    with Session(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
    if account.auth_type != "oauth2" or account.oauth2_app_id is None:
        raise InvalidRequest("only an OAuth2 account can be reauthorized; change its password")
    request = AuthorizeRequest(
        return_to=spec.return_to, protocol=account.protocol, login_hint=account.username
    )
    return authorize(gw, tenant_id, account.oauth2_app_id, request, account_id=account.id)


def callback(
    gw: Gateway, state: str | None, code: str | None, error: str | None, description: str | None
) -> str:
    """Finish a sign-in; the URL to send the browser to. Raises OAuth2StateInvalid when the
    state is unknown, used or expired (then there is nowhere safe to send it)."""
    if not state or len(state) > 200:
        raise OAuth2StateInvalid("The sign-in is unknown; start it again.")
    with session_scope(gw.engine) as session:  # single use: gone before anything else happens
        signin = session.get(OAuthSignin, _hash(state))
        if signin is not None:
            session.delete(signin)
    if signin is None:
        raise OAuth2StateInvalid("The sign-in is unknown or was finished already.")
    if as_utc(signin.expires_at) < utcnow():
        raise OAuth2StateInvalid("The sign-in expired; start it again.")
    try:
        account_id = _finish(gw, signin, code, error, description)
    except MailgateError as exc:
        log.info(
            "oauth2 sign-in failed",
            extra={"operation": "oauth2.callback", "outcome": exc.type, "error": exc.detail},
        )
        return _with_query(signin.return_to, error=exc.type, error_description=exc.detail)
    return _with_query(signin.return_to, account_id=account_id)


def _finish(
    gw: Gateway, signin: OAuthSignin, code: str | None, error: str | None, description: str | None
) -> str:
    if error:
        words = f"{error}: {description}" if description else error
        raise OAuth2ProviderError(f"The provider ended the sign-in: {words[:300]}")
    if not code:
        raise OAuth2ProviderError("The provider sent no authorization code.")
    with Session(gw.engine) as session:
        app = session.get(OAuthApp, signin.app_id)
    if app is None:
        raise OAuth2ProviderError("The OAuth2 app was deleted during the sign-in.")
    verifier = gw.passwords.decrypt(signin.code_verifier_encrypted)
    try:
        tokens = gw.oauth2.exchange_code(
            client_of(gw.passwords, app), code[:2000], verifier, app.redirect_uri
        )
        address = _address(gw, app, tokens)
    except (ProviderRefused, ProviderUnavailable) as exc:
        raise OAuth2ProviderError(f"The provider refused the sign-in: {exc}") from None
    if signin.account_id is not None:
        return _renew(gw, signin, address, app, tokens)
    server = server_of(app, signin.protocol)
    if server is None:
        raise OAuth2ProviderError(f"The app names no {signin.protocol} server.")
    account = Account(
        id=new_id("acc"),
        tenant_id=signin.tenant_id,
        name=signin.name,
        protocol=signin.protocol,  # type: ignore[arg-type]  # checked when the sign-in began
        host=server.host,
        port=server.port,
        security=server.security,
        username=address,
        password_encrypted="",
        auth_type="oauth2",
        oauth2_app_id=app.id,
    )
    save_account(gw, account, verified_tokens(gw, account, app, tokens))
    first_refresh(gw, account)
    log.info(
        "oauth2 sign-in",
        extra={"account_id": account.id, "operation": "oauth2.callback", "outcome": "created"},
    )
    return account.id


def _renew(gw: Gateway, signin: OAuthSignin, address: str, app: OAuthApp, tokens: Tokens) -> str:
    with Session(gw.engine) as session:
        account = session.get(Account, signin.account_id)
    if account is None:
        raise OAuth2ProviderError("The account was deleted during the sign-in.")
    if account.username.lower() != address.lower():
        raise OAuth2WrongMailbox(
            f"The sign-in reached {address}, but the account is {account.username}."
        )
    tokens = verified_tokens(gw, account, app, tokens)
    with session_scope(gw.engine) as session:
        stored = session.get(Account, account.id)
        if stored is not None:
            stored.oauth2_app_id = app.id
            session.add(stored)
    store_tokens(gw.engine, gw.passwords, account.id, tokens)
    mark_working(gw.engine, account.id)
    gw.mailboxes.forget(account.id)  # a pool may hold connections of the old grant
    log.info(
        "oauth2 sign-in",
        extra={"account_id": account.id, "operation": "oauth2.callback", "outcome": "renewed"},
    )
    return account.id


def _address(gw: Gateway, app: OAuthApp, tokens: Tokens) -> str:
    """The mailbox address: from the id_token, else the userinfo endpoint."""
    claims = id_token_claims(tokens.id_token)
    for claim in ("email", "preferred_username", "upn"):
        value = claims.get(claim)
        if isinstance(value, str) and "@" in value:
            return value[:320]
    if app.userinfo_url:
        value = gw.oauth2.userinfo(app.userinfo_url, tokens.access_token).get("email")
        if isinstance(value, str) and "@" in value:
            return value[:320]
    raise OAuth2ProviderError(
        "The provider did not tell the mailbox address (no email in the id_token or userinfo)."
    )


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


_RETURN_TO = ("body", "return_to")
