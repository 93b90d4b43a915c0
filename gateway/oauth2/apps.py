"""OAuth2 apps: a tenant's client at a provider. Tenant-scoped CRUD; the client secret is
encrypted at rest and never returned."""

from __future__ import annotations

import json
from typing import get_args

from sqlmodel import Session, col, select

from mailgate.domain.endpoint import MailProtocol
from mailgate.domain.errors import InUse, InvalidRequest, NotFound
from mailgate.domain.ids import is_valid_id, new_id
from mailgate.domain.oauth2 import (
    MailServer,
    OAuthAppCreate,
    OAuthAppOut,
    OAuthAppUpdate,
)
from mailgate.gateway.context import Gateway
from mailgate.gateway.oauth2.providers import PROVIDERS
from mailgate.store.db import session_scope
from mailgate.store.models import Account, OAuthApp, as_utc, utcnow

APP_PREFIX = "oap"
PROTOCOLS: tuple[str, ...] = get_args(MailProtocol.__value__)  # each has a field on the app
_URLS = ("authorization_url", "token_url", "userinfo_url", "revocation_url")


def create_app(gw: Gateway, tenant_id: str, spec: OAuthAppCreate) -> OAuthAppOut:
    defaults = PROVIDERS[spec.provider]
    app = OAuthApp(
        id=new_id(APP_PREFIX),
        tenant_id=tenant_id,
        provider=spec.provider,
        name=spec.name,
        client_id=spec.client_id,
        client_secret_encrypted=_encrypt(gw, spec.client_secret),
        redirect_uri=spec.redirect_uri,
        return_to_allowed=json.dumps(spec.return_to_allowed),
        scopes=json.dumps(spec.scopes if spec.scopes is not None else list(defaults.scopes)),
        authorization_url=spec.authorization_url or defaults.authorization_url,
        token_url=spec.token_url or defaults.token_url,
        userinfo_url=spec.userinfo_url or defaults.userinfo_url,
        revocation_url=spec.revocation_url or defaults.revocation_url,
        mail_servers=_servers(
            {
                protocol: getattr(spec, protocol) or getattr(defaults, protocol)
                for protocol in PROTOCOLS
            }
        ),
    )
    _check(gw, app)
    with session_scope(gw.engine) as session:
        session.add(app)
    return to_out(app)


def list_apps(gw: Gateway, tenant_id: str) -> list[OAuthAppOut]:
    with Session(gw.engine) as session:
        rows = session.exec(
            select(OAuthApp)
            .where(OAuthApp.tenant_id == tenant_id)
            .order_by(col(OAuthApp.created_at), col(OAuthApp.id))
        ).all()
        return [to_out(row) for row in rows]


def get_app(gw: Gateway, tenant_id: str, app_id: str) -> OAuthAppOut:
    with Session(gw.engine) as session:
        return to_out(load_app(session, tenant_id, app_id))


def update_app(gw: Gateway, tenant_id: str, app_id: str, changes: OAuthAppUpdate) -> OAuthAppOut:
    given = changes.model_fields_set
    with session_scope(gw.engine) as session:
        app = load_app(session, tenant_id, app_id)
        for name in ("name", "client_id", "redirect_uri", *_URLS):
            if name in given:
                value = getattr(changes, name)
                if value is None and name not in ("name", "userinfo_url", "revocation_url"):
                    raise InvalidRequest(f"`{name}` cannot be null", ("body", name))
                setattr(app, name, value)
        if "client_secret" in given:
            app.client_secret_encrypted = _encrypt(gw, changes.client_secret)
        if changes.return_to_allowed is not None:
            app.return_to_allowed = json.dumps(changes.return_to_allowed)
        if changes.scopes is not None:
            app.scopes = json.dumps(changes.scopes)
        servers = {protocol: server_of(app, protocol) for protocol in PROTOCOLS}
        servers.update({p: getattr(changes, p) for p in PROTOCOLS if p in given})
        app.mail_servers = _servers(servers)
        _check(gw, app)
        app.updated_at = utcnow()
        session.add(app)
    return to_out(app)


def delete_app(gw: Gateway, tenant_id: str, app_id: str) -> None:
    with session_scope(gw.engine) as session:
        app = load_app(session, tenant_id, app_id)
        used = session.exec(select(Account).where(Account.oauth2_app_id == app.id)).first()
        if used is not None:
            raise InUse("accounts sign in with this app; delete them first")
        session.delete(app)


def load_app(session: Session, tenant_id: str, app_id: str) -> OAuthApp:
    if not is_valid_id(app_id, APP_PREFIX):
        raise NotFound("OAuth2 app")
    app = session.get(OAuthApp, app_id)
    if app is None or app.tenant_id != tenant_id:
        raise NotFound("OAuth2 app")
    return app


def server_of(app: OAuthApp, protocol: str) -> MailServer | None:
    """The app's mail server for ``protocol`` (imap, pop3), if it names one."""
    raw = json.loads(app.mail_servers).get(protocol)
    return MailServer.model_validate(raw) if raw else None


def return_to_allowed(app: OAuthApp, return_to: str) -> bool:
    """``return_to`` starts with an allowed URL, which ends at a path boundary: an allowed
    ``https://app.example/done`` lets ``.../done?x`` and ``.../done/y`` pass, not
    ``.../donex`` nor ``https://app.example.evil``."""
    for allowed in json.loads(app.return_to_allowed):
        if return_to == allowed:
            return True
        if not return_to.startswith(allowed):
            continue
        if allowed.endswith(("/", "?")) or return_to[len(allowed)] in "/?#":
            return True
    return False


def to_out(app: OAuthApp) -> OAuthAppOut:
    return OAuthAppOut(
        id=app.id,
        provider=app.provider,
        name=app.name,
        client_id=app.client_id,
        has_client_secret=app.client_secret_encrypted is not None,
        redirect_uri=app.redirect_uri,
        return_to_allowed=json.loads(app.return_to_allowed),
        scopes=json.loads(app.scopes),
        authorization_url=app.authorization_url,
        token_url=app.token_url,
        userinfo_url=app.userinfo_url,
        revocation_url=app.revocation_url,
        **{protocol: server_of(app, protocol) for protocol in PROTOCOLS},
        created_at=as_utc(app.created_at),
        updated_at=as_utc(app.updated_at),
    )


def _check(gw: Gateway, app: OAuthApp) -> None:
    if not app.authorization_url or not app.token_url:
        raise InvalidRequest(
            "a custom provider needs `authorization_url` and `token_url`", ("body", "token_url")
        )
    for name in _URLS:
        url = getattr(app, name)
        if url:
            gw.oauth2.check(url, name.replace("_", " ").removesuffix(" url"))


def _encrypt(gw: Gateway, secret: str | None) -> str | None:
    return gw.passwords.encrypt(secret) if secret else None


def _servers(servers: dict[str, MailServer | None]) -> str:
    return json.dumps(
        {protocol: server.model_dump() for protocol, server in servers.items() if server}
    )
