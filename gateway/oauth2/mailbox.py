"""Adding an OAuth2 account: its first tokens verified by a login before anything is kept,
then the account and its tokens stored together."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from mailgate.domain.errors import MailboxAuthFailed, MailboxUnreachable
from mailgate.gateway.context import Gateway
from mailgate.gateway.oauth2.provider import ProviderRefused, ProviderUnavailable, Tokens
from mailgate.gateway.oauth2.tokens import AHEAD, client_of, write_tokens
from mailgate.store.db import session_scope
from mailgate.store.models import Account, AccountToken, OAuthApp, utcnow

log = logging.getLogger("mailgate.oauth2")


def verified_tokens(gw: Gateway, account: Account, app: OAuthApp, tokens: Tokens) -> Tokens:
    """Log in to the mailbox with ``tokens``; an access token that is expired or refused is
    refreshed once first (when there is a refresh token). Returns the tokens that worked."""
    if _expired(tokens.expires_at) and tokens.refresh_token:
        tokens = _refreshed(gw, app, tokens)
    try:
        gw.mailboxes.build(account, token=lambda _refused: tokens.access_token).verify()
        return tokens
    except MailboxAuthFailed:
        if not tokens.refresh_token:
            raise
    tokens = _refreshed(gw, app, tokens)
    gw.mailboxes.build(account, token=lambda _refused: tokens.access_token).verify()
    return tokens


def save_account(gw: Gateway, account: Account, tokens: Tokens) -> None:
    """The new account and its tokens, in one transaction."""
    with session_scope(gw.engine) as session:
        session.add(account)
        session.flush()
        write_tokens(session, gw.passwords, account.id, tokens)


def _refreshed(gw: Gateway, app: OAuthApp, tokens: Tokens) -> Tokens:
    assert tokens.refresh_token is not None
    try:
        return gw.oauth2.refresh(client_of(gw.passwords, app), tokens.refresh_token)
    except ProviderRefused as exc:
        raise MailboxAuthFailed(f"the OAuth2 provider refused the refresh: {exc}") from None
    except ProviderUnavailable as exc:
        raise MailboxUnreachable(f"the OAuth2 token cannot be refreshed: {exc}") from None


def _expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at - AHEAD <= utcnow()


def revoke_refresh_token(gw: Gateway, account: Account) -> None:
    """Revoke the account's refresh token (RFC 7009) where its app has a revocation endpoint;
    a failure is logged and does not stop the delete."""
    with Session(gw.engine) as session:
        row = session.get(AccountToken, account.id)
        app = session.get(OAuthApp, account.oauth2_app_id) if account.oauth2_app_id else None
    if row is None or app is None or not app.revocation_url or not row.refresh_token_encrypted:
        return
    try:
        gw.oauth2.revoke(
            client_of(gw.passwords, app),
            app.revocation_url,
            gw.passwords.decrypt(row.refresh_token_encrypted),
        )
        outcome = "revoked"
    except ProviderUnavailable as exc:
        outcome = f"failed: {exc}"
    log.info(
        "oauth2 refresh token revocation",
        extra={"account_id": account.id, "operation": "oauth2.revoke", "outcome": outcome},
    )
