"""One live adapter per account (with its connection pool), rebuilt when settings change."""

from __future__ import annotations

import json
import threading

from sqlalchemy.engine import Engine, RowMapping
from sqlmodel import Session, col, select

from mailgate.adapters.base import MailAdapter
from mailgate.adapters.registry import adapter_for, protocols_that, traits
from mailgate.domain.endpoint import MailboxEndpoint, OperationObserver, TokenSource
from mailgate.domain.errors import InvalidRequest
from mailgate.domain.ids import folder_path
from mailgate.gateway.changes import AccountChanges
from mailgate.gateway.crypto import PasswordBox
from mailgate.gateway.oauth2.provider import Provider
from mailgate.gateway.oauth2.tokens import AccountTokens
from mailgate.gateway.settings import Settings
from mailgate.store.aliases import SqlAliasStore
from mailgate.store.models import Account


class Mailboxes:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        passwords: PasswordBox,
        oauth2: Provider,
        observer: OperationObserver | None = None,
    ) -> None:
        """``observer``: told of every mailbox operation (the gateway's metrics)."""
        self.settings = settings
        self.observer = observer
        self.engine = engine
        self.passwords = passwords
        self.oauth2 = oauth2
        self._lock = threading.Lock()
        self._adapters: dict[str, tuple[tuple[object, ...], MailAdapter]] = {}

    def endpoint(
        self, account: Account, password: str | None = None, token: TokenSource | None = None
    ) -> MailboxEndpoint:
        """How to reach and log in to the account; ``password`` or ``token``: credentials
        not yet stored. An OAuth2 account logs in with its stored access token, refreshed
        as needed."""
        if account.auth_type == "oauth2":
            if token is None:
                token = AccountTokens(self.engine, self.passwords, self.oauth2, account.id)
            password = ""
        return MailboxEndpoint(
            account_id=account.id,
            host=account.host,
            port=account.port,
            security=account.security,
            username=account.username,
            password=self.passwords.decrypt(account.password_encrypted)
            if password is None
            else password,
            tls_verify=account.tls_verify,
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.command_timeout,
            pool_idle=self.settings.imap_pool_idle,
            allow_private=self.settings.allow_private_mailboxes,
            token=token,
            observer=self.observer,
        )

    def smtp_endpoint(self, account: Account, password: str | None = None) -> MailboxEndpoint:
        """Where and how the account sends: its SMTP settings, with the mailbox's own
        credentials (password or OAuth2 token) unless it has a password of its own."""
        if account.smtp_host is None or account.smtp_port is None:
            raise InvalidRequest("the account has no SMTP settings; PUT them first")
        if password is None and account.smtp_password_encrypted:
            password = self.passwords.decrypt(account.smtp_password_encrypted)
        token = None
        if password is None:  # the mailbox's own credentials
            mailbox = self.endpoint(account)
            password, token = mailbox.password, mailbox.token
        return MailboxEndpoint(
            account_id=account.id,
            host=account.smtp_host,
            port=account.smtp_port,
            security=account.smtp_security,  # type: ignore[arg-type]  # a Security, as stored
            username=account.smtp_username or account.username,
            password=password,
            tls_verify=account.smtp_tls_verify,
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.command_timeout,
            allow_private=self.settings.allow_private_mailboxes,
            token=token,
        )

    def build(
        self, account: Account, password: str | None = None, token: TokenSource | None = None
    ) -> MailAdapter:
        """A fresh adapter, not cached (to verify new settings before saving them)."""
        return adapter_for(
            account.protocol,
            self.endpoint(account, password, token),
            aliases=SqlAliasStore(self.engine, account.id),
            engine=self.engine,
            changes=AccountChanges(self.engine, account.id),
            pop3_policy=account.pop3_policy(),
            sync_interval=self.settings.pop3_sync_interval,
            watched=watched_paths(account),
        )

    def cached(self, row: RowMapping) -> MailAdapter | None:
        """The shared adapter of the account whose row this is, if built from the same
        settings (else :meth:`adapter` builds it): a read needs no ORM object then."""
        with self._lock:
            cached = self._adapters.get(row["id"])
        if cached and cached[0] == settings_fingerprint(row):
            return cached[1]
        return None

    def adapter(self, account: Account) -> MailAdapter:
        """The account's shared adapter; a settings change replaces it."""
        fingerprint = settings_fingerprint(account)
        with self._lock:
            cached = self._adapters.get(account.id)
            if cached and cached[0] == fingerprint:
                return cached[1]
            adapter = self.build(account)
            self._adapters[account.id] = (fingerprint, adapter)
        if cached:
            cached[1].close()
        return adapter

    def keeps_state(self, account: Account) -> bool:
        """Whether Mailgate's store is the account's state (POP3): its background refresh
        is a sync that downloads new mail."""
        return traits(account.protocol).keeps_state

    def forget(self, account_id: str) -> None:
        with self._lock:
            cached = self._adapters.pop(account_id, None)
        if cached:
            cached[1].close()

    def reap(self) -> int:
        """Close every account's pooled connections idle past their limit; how many."""
        with self._lock:
            adapters = [adapter for _, adapter in self._adapters.values()]
        return sum(adapter.reap() for adapter in adapters)

    def close(self) -> None:
        with self._lock:
            adapters, self._adapters = list(self._adapters.values()), {}
        for _, adapter in adapters:
            adapter.close()


# What an account's adapter is not built from: changing these keeps it.
_NOT_SETTINGS = {"name", "state", "state_detail", "created_at", "updated_at"}
_SETTINGS = tuple(name for name in Account.model_fields if name not in _NOT_SETTINGS)


def settings_fingerprint(account: Account | RowMapping) -> tuple[object, ...]:
    """What an account's adapter is built from: when it changes, the adapter is rebuilt.
    Of an :class:`Account`, or of its row as a mapping (:meth:`Mailboxes.cached`)."""
    if isinstance(account, Account):
        return tuple((name, getattr(account, name)) for name in _SETTINGS)
    return tuple((name, account[name]) for name in _SETTINGS)


def watched_paths(account: Account) -> set[str] | None:
    """The IMAP folder paths whose changes by other clients are watched; None: all of them.

    Decoded from the stored ids alone (no database or network), so a watcher can ask every
    round. An id whose folder was renamed or deleted since simply matches no folder.
    """
    if account.watched_folders is None or not traits(account.protocol).server_watch:
        return None
    paths = (folder_path(id_) for id_ in json.loads(account.watched_folders))
    return {path for path in paths if path is not None}


def accounts_that(
    engine: Engine, *, server_watch: bool | None = None, keeps_state: bool | None = None
) -> list[Account]:
    """The accounts whose protocol has these traits (adapters.registry.Traits; None: either):
    ``server_watch`` ones get a watcher (mailgate.events.watchers), ``keeps_state`` ones are
    refreshed on a timer (mailgate.events.poller)."""
    protocols = protocols_that(server_watch=server_watch, keeps_state=keeps_state)
    with Session(engine) as session:
        query = select(Account).where(col(Account.protocol).in_(protocols))
        return list(session.exec(query).all())
