"""API keys: what one may do (its grant), and /v1/keys (make, list, read, delete)."""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailgate.domain.errors import InvalidRequest, NotFound
from mailgate.domain.ids import is_valid_id, new_id
from mailgate.domain.keys import KeyCreate, KeyCreated, KeyGrant, KeyOut, effective_scopes
from mailgate.gateway.accounts import unknown_accounts
from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import hash_api_key, new_api_key
from mailgate.store.db import read_session, session_scope
from mailgate.store.models import ApiKey, as_utc, utcnow

KEY_PREFIX = "key"


def grant_for_key(engine: Engine, key: str) -> KeyGrant | None:
    """The grant of a key that was not deleted (an expired one included), or None."""
    return _grant(engine, col(ApiKey.key_hash) == hash_api_key(key))


def grant_for_key_id(engine: Engine, key_id: str) -> KeyGrant | None:
    """As :func:`grant_for_key`, by the key's id (an events token names its key so)."""
    return _grant(engine, col(ApiKey.id) == key_id)


def _grant(engine: Engine, where: ColumnElement[bool]) -> KeyGrant | None:
    with read_session(engine) as session:
        row = session.exec(select(ApiKey).where(where, col(ApiKey.revoked_at).is_(None))).first()
    if row is None:
        return None
    bound = _bound(row)
    return KeyGrant(
        key_id=row.id,
        tenant_id=row.tenant_id,
        scopes=effective_scopes(row.scopes.split()),
        account_ids=None if bound is None else frozenset(bound),
        expires_at=None if row.expires_at is None else as_utc(row.expires_at),
        rate_limit_per_minute=row.rate_limit_per_minute,
    )


def new_key_row(tenant_id: str, name: str, scopes: list[str]) -> tuple[str, ApiKey]:
    """A new key and its row (only its hash and first characters are kept)."""
    key = new_api_key()
    row = ApiKey(
        id=new_id(KEY_PREFIX),
        tenant_id=tenant_id,
        prefix=key[:10],
        key_hash=hash_api_key(key),
        name=name,
        scopes=" ".join(scopes),
    )
    return key, row


def create_key(gw: Gateway, tenant_id: str, body: KeyCreate) -> KeyCreated:
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise InvalidRequest("`expires_at` must be in the future", loc=("body", "expires_at"))
    with session_scope(gw.engine) as session:
        _check_accounts(session, tenant_id, body.account_ids)
        key, row = new_key_row(tenant_id, body.name, list(body.scopes))
        row.account_ids = None if body.account_ids is None else json.dumps(body.account_ids)
        row.expires_at = body.expires_at
        row.rate_limit_per_minute = body.rate_limit_per_minute
        session.add(row)
    return KeyCreated(**to_out(row).model_dump(), key=key)


def list_keys(gw: Gateway, tenant_id: str) -> list[KeyOut]:
    with read_session(gw.engine) as session:
        rows = session.exec(
            select(ApiKey)
            .where(col(ApiKey.tenant_id) == tenant_id, col(ApiKey.revoked_at).is_(None))
            .order_by(col(ApiKey.created_at), col(ApiKey.id))
        ).all()
        return [to_out(row) for row in rows]


def get_key(gw: Gateway, tenant_id: str, key_id: str) -> KeyOut:
    with read_session(gw.engine) as session:
        return to_out(_load(session, tenant_id, key_id))


def delete_key(gw: Gateway, tenant_id: str, key_id: str) -> None:
    """Revoke: the key stops working at once in this process, and in the others once their
    cache of it runs out (``MAILGATE_API_KEY_CACHE_SECONDS``)."""
    with session_scope(gw.engine) as session:
        row = _load(session, tenant_id, key_id)
        row.revoked_at = utcnow()
        session.add(row)
    gw.key_cache.discard(row.key_hash)
    gw.key_cache.discard(row.id)


def _load(session: Session, tenant_id: str, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id) if is_valid_id(key_id, KEY_PREFIX) else None
    if row is None or row.tenant_id != tenant_id or row.revoked_at is not None:
        raise NotFound("key")
    return row


def _check_accounts(session: Session, tenant_id: str, account_ids: list[str] | None) -> None:
    if account_ids is None:
        return
    if not account_ids:
        raise InvalidRequest(
            "`account_ids` must name at least one account, or be null", loc=("body", "account_ids")
        )
    unknown = unknown_accounts(session, tenant_id, account_ids)
    if unknown:
        index = account_ids.index(unknown[0])
        raise InvalidRequest(f"no such account: {unknown[0]}", loc=("body", "account_ids", index))


def _bound(row: ApiKey) -> list[str] | None:
    return None if row.account_ids is None else list(json.loads(row.account_ids))


def to_out(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=row.scopes.split(),
        account_ids=_bound(row),
        expires_at=None if row.expires_at is None else as_utc(row.expires_at),
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=as_utc(row.created_at),
        last_used_at=None if row.last_used_at is None else as_utc(row.last_used_at),
    )
