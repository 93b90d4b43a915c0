"""Tenants and their API keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailgate.domain.ids import new_id
from mailgate.gateway.crypto import hash_api_key, new_api_key
from mailgate.store.db import session_scope
from mailgate.store.models import ApiKey, Tenant


@dataclass(frozen=True)
class IssuedKey:
    key: str
    key_id: str
    tenant_id: str
    tenant_name: str


def issue_api_key(engine: Engine, tenant_name: str) -> IssuedKey:
    """Create the tenant if needed and a new key for it. The key is never stored."""
    key = new_api_key()
    with session_scope(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.name == tenant_name)).first()
        if tenant is None:
            tenant = Tenant(id=new_id("ten"), name=tenant_name)
            session.add(tenant)
            session.flush()
        row = ApiKey(
            id=new_id("key"), tenant_id=tenant.id, prefix=key[:10], key_hash=hash_api_key(key)
        )
        session.add(row)
        return IssuedKey(key=key, key_id=row.id, tenant_id=tenant.id, tenant_name=tenant.name)


def tenant_for_key(engine: Engine, key: str) -> str | None:
    """The tenant id a live key belongs to, or None."""
    with Session(engine) as session:
        row = session.exec(
            select(ApiKey).where(
                ApiKey.key_hash == hash_api_key(key), col(ApiKey.revoked_at).is_(None)
            )
        ).first()
        return row.tenant_id if row else None
