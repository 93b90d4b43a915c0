"""An OAuth2 account's access token, kept fresh (the adapters' ``TokenSource``).

The stored token is used until a minute before it expires, or until the mail server refuses
it. Then one process refreshes it: the one holding the account's refresh lease (a row in
``lease``, across gateway processes); the others wait for its new token instead of spending
the refresh token too (a rotated refresh token works once). The new access token and the
rotated refresh token are stored in one transaction, both encrypted.

A refresh the provider refuses (``invalid_grant``: consent revoked or expired) is a login
refused: the account goes to ``auth_failed`` with the provider's words and one
``account.error`` event; ``POST /v1/accounts/{id}/reauthorize`` signs it in again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from mailgate.domain.errors import MailboxAuthFailed, MailboxTimeout, MailboxUnreachable
from mailgate.domain.ids import new_id
from mailgate.gateway.crypto import PasswordBox
from mailgate.gateway.health_state import mark_failed
from mailgate.gateway.oauth2.provider import (
    Client,
    Provider,
    ProviderRefused,
    ProviderUnavailable,
    Tokens,
)
from mailgate.store import leases
from mailgate.store.db import session_scope
from mailgate.store.models import Account, AccountToken, OAuthApp, as_utc, utcnow

log = logging.getLogger("mailgate.oauth2")

AHEAD = timedelta(seconds=60)  # refresh this long before the token expires
# Short, and renewed while the refresh runs: a process that dies mid-refresh holds the others
# up for at most this long (they wait up to WAIT for it, then take over).
LEASE = timedelta(seconds=20)
WAIT = 30.0  # longest wait for another process's refresh
POLL = 0.1


class AccountTokens:
    def __init__(
        self, engine: Engine, passwords: PasswordBox, provider: Provider, account_id: str
    ) -> None:
        self.engine, self.passwords, self.provider = engine, passwords, provider
        self.account_id = account_id

    def __call__(self, refused: str | None) -> str:
        current, expires_at = self._stored()
        if refused is not None and current != refused:
            return current  # another process has replaced the refused token already
        if refused is None and (expires_at is None or expires_at - AHEAD > utcnow()):
            return current
        return self._refresh(current)

    def _stored(self) -> tuple[str, datetime | None]:
        with Session(self.engine) as session:
            row = session.get(AccountToken, self.account_id)
            if row is None:
                raise MailboxAuthFailed("the account has no OAuth2 tokens; reauthorize it")
            expires = as_utc(row.expires_at) if row.expires_at is not None else None
            return self.passwords.decrypt(row.access_token_encrypted), expires

    def _refresh(self, stale: str) -> str:
        name, owner = f"oauth2-refresh:{self.account_id}", new_id("own")
        deadline = time.monotonic() + WAIT
        while not leases.acquire(self.engine, name, owner, LEASE):
            time.sleep(POLL)  # another process refreshes: its token is ours too
            current, _ = self._stored()
            if current != stale:
                return current
            if time.monotonic() > deadline:
                raise MailboxTimeout("another gateway process is refreshing the OAuth2 token")
        try:
            current, _ = self._stored()
            if current != stale:  # refreshed between our look and the lease
                return current
            with leases.renewed(self.engine, name, owner, LEASE):
                return self._refresh_now()
        finally:
            leases.release(self.engine, name, owner)

    def _refresh_now(self) -> str:
        started = time.monotonic()
        with Session(self.engine) as session:
            row = session.get(AccountToken, self.account_id)
            account = session.get(Account, self.account_id)
            app_id = account.oauth2_app_id if account is not None else None
            app = session.get(OAuthApp, app_id) if app_id is not None else None
            if row is None or app is None:
                raise MailboxAuthFailed("the account's OAuth2 app is gone; reauthorize it")
            refresh_token = (
                self.passwords.decrypt(row.refresh_token_encrypted)
                if row.refresh_token_encrypted
                else None
            )
            client = client_of(self.passwords, app)
        if refresh_token is None:
            error = MailboxAuthFailed(
                "the access token expired and there is no refresh token; reauthorize"
            )
            mark_failed(self.engine, self.account_id, error)
            raise error
        try:
            tokens = self.provider.refresh(client, refresh_token)
        except ProviderRefused as exc:
            error = MailboxAuthFailed(f"the OAuth2 provider refused the refresh: {exc}")
            mark_failed(self.engine, self.account_id, error)
            self._log("refused", started, exc.error)
            raise error from None
        except ProviderUnavailable as exc:
            self._log("unavailable", started, str(exc))
            raise MailboxUnreachable(f"the OAuth2 token cannot be refreshed: {exc}") from None
        store_tokens(self.engine, self.passwords, self.account_id, tokens)
        self._log("refreshed", started, None)
        return tokens.access_token

    def _log(self, outcome: str, started: float, error: str | None) -> None:
        log.info(
            "oauth2 token refresh",
            extra={
                "account_id": self.account_id,
                "operation": "oauth2.refresh",
                "outcome": outcome,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                **({"error": error[:300]} if error else {}),
            },
        )


def client_of(passwords: PasswordBox, app: OAuthApp) -> Client:
    secret = passwords.decrypt(app.client_secret_encrypted) if app.client_secret_encrypted else None
    return Client(app.client_id, secret, app.token_url)


def store_tokens(engine: Engine, passwords: PasswordBox, account_id: str, tokens: Tokens) -> None:
    """Save an account's tokens in one transaction (see ``write_tokens``)."""
    with session_scope(engine) as session:
        write_tokens(session, passwords, account_id, tokens)


def write_tokens(session: Session, passwords: PasswordBox, account_id: str, tokens: Tokens) -> None:
    """An account's new tokens, in the caller's transaction; a refresh token the provider
    did not rotate (None) leaves the stored one as it was."""
    row = session.get(AccountToken, account_id) or AccountToken(
        account_id=account_id, access_token_encrypted=""
    )
    row.access_token_encrypted = passwords.encrypt(tokens.access_token)
    if tokens.refresh_token is not None:
        row.refresh_token_encrypted = passwords.encrypt(tokens.refresh_token)
    row.expires_at = tokens.expires_at
    row.updated_at = utcnow()
    session.add(row)
