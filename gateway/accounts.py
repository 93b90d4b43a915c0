"""Accounts: add (after a verified login), read, change, remove. Tenant-scoped throughout."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence

from sqlmodel import Session, col, select

from mailgate.adapters.registry import default_port, traits
from mailgate.domain.accounts import (
    AccountCreate,
    AccountOut,
    AccountUpdate,
    OAuth2Auth,
    PasswordAuth,
    SyncProgress,
)
from mailgate.domain.errors import InvalidFolderId, InvalidRequest, MailboxError, NotFound
from mailgate.domain.ids import folder_id, folder_path, is_valid_id, new_id
from mailgate.domain.mail import Folder
from mailgate.gateway.context import Gateway
from mailgate.gateway.oauth2.apps import load_app, server_of
from mailgate.gateway.oauth2.mailbox import revoke_refresh_token, save_account, verified_tokens
from mailgate.gateway.oauth2.provider import Tokens
from mailgate.store import first_sync
from mailgate.store.db import read_session, scrub, session_scope
from mailgate.store.models import Account, OAuthApp, as_utc, utcnow

log = logging.getLogger("mailgate.accounts")
_CONNECTION_FIELDS = ("host", "port", "security", "tls_verify", "username", "password")


def create_account(gw: Gateway, tenant_id: str, spec: AccountCreate) -> AccountOut:
    """Log in to the mailbox first; only a working mailbox is stored."""
    policy = spec.pop3
    if policy is not None and not traits(spec.protocol).keeps_state:
        raise InvalidRequest(
            f"`pop3` settings are not allowed for protocol {spec.protocol}", ("body", "pop3")
        )
    auth = spec.auth
    app = _oauth2_app(gw, tenant_id, auth) if isinstance(auth, OAuth2Auth) else None
    server = server_of(app, spec.protocol) if app is not None else None
    host = spec.host or (server.host if server is not None else None)
    if host is None:
        raise InvalidRequest(
            f"`host` is required: the OAuth2 app names no {spec.protocol} server", ("body", "host")
        )
    security = spec.security or (server.security if server is not None else "tls")
    port = spec.port or (server.port if server is not None and not spec.host else None)
    account = Account(
        id=new_id("acc"),
        tenant_id=tenant_id,
        name=spec.name,
        protocol=spec.protocol,
        host=host,
        port=port or default_port(spec.protocol, security),
        security=security,
        tls_verify=spec.tls_verify,
        username=spec.username,
        password_encrypted="",
    )
    if policy is not None:
        account.set_pop3_policy(policy)
    if spec.send_as is not None:
        account.send_as = json.dumps(spec.send_as)
    if isinstance(auth, OAuth2Auth) and app is not None:
        account.auth_type, account.oauth2_app_id = "oauth2", app.id
        expires_at = as_utc(auth.expires_at) if auth.expires_at is not None else None
        tokens = Tokens(auth.access_token, auth.refresh_token, expires_at)
        save_account(gw, account, verified_tokens(gw, account, app, tokens))
    else:
        assert isinstance(auth, PasswordAuth)
        account.password_encrypted = gw.passwords.encrypt(auth.password)
        gw.mailboxes.build(account, auth.password).verify()
        with session_scope(gw.engine) as session:
            session.add(account)
    first_refresh(gw, account)
    return get_account(gw, tenant_id, account.id)


def first_refresh(gw: Gateway, account: Account) -> None:
    """A new POP3 account downloads its mail now; a failure here is retried on reads."""
    try:
        gw.mailboxes.adapter(account).refresh()
    except MailboxError as exc:
        log.warning("first refresh failed", extra={"account_id": account.id, "error": exc.detail})


def _oauth2_app(gw: Gateway, tenant_id: str, auth: OAuth2Auth) -> OAuthApp:
    with Session(gw.engine) as session:
        try:
            return load_app(session, tenant_id, auth.app_id)
        except NotFound:
            raise InvalidRequest("no such OAuth2 app", ("body", "auth", "app_id")) from None


def list_accounts(
    gw: Gateway, tenant_id: str, only: Collection[str] | None = None
) -> list[AccountOut]:
    """The tenant's accounts, oldest first; only those of ``only`` when given."""
    with Session(gw.engine) as session:
        query = select(Account).where(Account.tenant_id == tenant_id)
        if only is not None:
            query = query.where(col(Account.id).in_(only))
        rows = session.exec(query.order_by(col(Account.created_at))).all()
        syncing = _first_syncs(session, rows)
        return [to_out(row, syncing.get(row.id)) for row in rows]


def get_account(gw: Gateway, tenant_id: str, account_id: str) -> AccountOut:
    with read_session(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
        return to_out(account, _first_syncs(session, [account]).get(account_id))


def update_account(
    gw: Gateway, tenant_id: str, account_id: str, changes: AccountUpdate
) -> AccountOut:
    """Apply the given fields; when connection settings change, log in with them first."""
    given = changes.model_fields_set
    with Session(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
        if (
            changes.security
            and "port" not in given
            and account.port == default_port(account.protocol, account.security)
        ):  # a default port follows the security change
            account.port = default_port(account.protocol, changes.security)
        for name in ("host", "port", "security", "tls_verify", "username", "name"):
            value = getattr(changes, name)
            if name in given and (value is not None or name == "name"):
                setattr(account, name, value)
        if changes.pop3 is not None:
            if not traits(account.protocol).keeps_state:
                raise InvalidRequest(
                    f"`pop3` settings are not allowed for {account.protocol}", ("body", "pop3")
                )
            account.set_pop3_policy(changes.pop3)
        if any(name in given for name in _CONNECTION_FIELDS):
            password = changes.password if changes.password else None
            if password is not None and account.auth_type == "oauth2":
                raise InvalidRequest(
                    "an OAuth2 account has no password; reauthorize it instead",
                    ("body", "password"),
                )
            gw.mailboxes.build(account, password).verify()
            if password is not None:
                account.password_encrypted = gw.passwords.encrypt(password)
            account.state, account.state_detail = "connected", None
        if "watched_folders" in given:
            account.watched_folders = _watch_list(gw, account, changes.watched_folders)
        if "send_as" in given:
            account.send_as = None if changes.send_as is None else json.dumps(changes.send_as)
        account.updated_at = utcnow()
        session.add(account)
        session.commit()
        session.refresh(account)
        return to_out(account, _first_syncs(session, [account]).get(account_id))


def _watch_list(gw: Gateway, account: Account, ids: list[str] | None) -> str | None:
    """The stored form of ``watched_folders`` (JSON, null: every folder), after checking
    that each id names a folder this account has now (folder ids carry only the path, so
    this asks the server)."""
    if ids is None:
        return None
    if not traits(account.protocol).server_watch:
        raise InvalidRequest(
            f"`watched_folders` is not allowed for {account.protocol} accounts",
            ("body", "watched_folders"),
        )
    bad = next((i for i, id_ in enumerate(ids) if folder_path(id_) is None), None)
    if bad is None and ids:
        present = {folder.id for folder in gw.mailboxes.adapter(account).list_folders()}
        bad = next((i for i, id_ in enumerate(ids) if id_ not in present), None)
    if bad is not None:
        raise InvalidFolderId(f"watched_folders[{bad}] is not a folder id of this account")
    return json.dumps(ids)


def follow_folder_rename(gw: Gateway, account_id: str, old_id: str, renamed: Folder) -> None:
    """Keep ``watched_folders`` pointing at a folder (and its subfolders) that the API renamed
    where folder ids follow the path (IMAP): the old ids are swapped for the new ones."""
    old_path = folder_path(old_id)
    if renamed.id == old_id or old_path is None:
        return
    with session_scope(gw.engine) as session:
        account = session.get(Account, account_id)
        if account is None or account.watched_folders is None:
            return
        before: list[str] = json.loads(account.watched_folders)
        after = [_renamed_id(id_, old_path, renamed) for id_ in before]
        if after != before:
            account.watched_folders = json.dumps(after)
            account.updated_at = utcnow()
            session.add(account)


def _renamed_id(id_: str, old_path: str, renamed: Folder) -> str:
    path = folder_path(id_)
    delimiter = renamed.delimiter or "/"
    if path == old_path:
        return renamed.id
    if path is not None and path.startswith(old_path + delimiter):
        return folder_id(str(folder_path(renamed.id)) + path[len(old_path) :])
    return id_


def delete_account(gw: Gateway, tenant_id: str, account_id: str) -> None:
    """Remove the account with everything stored for it; an OAuth2 account's refresh token
    is revoked first where the provider can (a failure is logged, never blocks)."""
    with Session(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
    if account.auth_type == "oauth2":
        revoke_refresh_token(gw, account)
    with session_scope(gw.engine) as session:
        session.delete(load_account(session, tenant_id, account_id))
    gw.mailboxes.forget(account_id)
    scrub(gw.engine)  # no readable trace of its mail left in the file


def unknown_accounts(session: Session, tenant_id: str, account_ids: list[str]) -> list[str]:
    """Those of ``account_ids`` that are no account of the tenant, in their order."""
    found = set(
        session.exec(
            select(Account.id).where(
                col(Account.tenant_id) == tenant_id, col(Account.id).in_(account_ids)
            )
        ).all()
    )
    return [account_id for account_id in account_ids if account_id not in found]


def load_account(session: Session, tenant_id: str, account_id: str) -> Account:
    if not is_valid_id(account_id, "acc"):
        raise NotFound("account")
    account = session.get(Account, account_id)
    if account is None or account.tenant_id != tenant_id:
        raise NotFound("account")
    return account


def _first_syncs(session: Session, accounts: Sequence[Account]) -> dict[str, SyncProgress]:
    """The accounts whose first sync has not finished, with how far it got: those that keep
    their mail in the store (POP3); the others read the server and are always complete."""
    keeping = [account.id for account in accounts if traits(account.protocol).keeps_state]
    return first_sync.unfinished(session, keeping)


def to_out(account: Account, syncing: SyncProgress | None = None) -> AccountOut:
    """``syncing``: how far the first sync got, while it has not finished."""
    return AccountOut(
        id=account.id,
        name=account.name,
        protocol=account.protocol,
        host=account.host,
        port=account.port,
        security=account.security,
        tls_verify=account.tls_verify,
        username=account.username,
        auth_type="oauth2" if account.auth_type == "oauth2" else "password",
        oauth2_app_id=account.oauth2_app_id,
        pop3=account.pop3_policy() if traits(account.protocol).keeps_state else None,
        watched_folders=None
        if account.watched_folders is None
        else json.loads(account.watched_folders),
        send_as=account.sender_addresses(),
        state=account.state,
        state_detail=account.state_detail,
        sync_state="running" if syncing is None else "initializing",
        sync_progress=syncing,
        created_at=as_utc(account.created_at),
        updated_at=as_utc(account.updated_at),
    )
