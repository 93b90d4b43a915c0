"""Tenants, and the first API key of one (`mailgate keys create`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import select

from mailgate.domain.ids import new_id
from mailgate.gateway.keys import new_key_row
from mailgate.store.db import session_scope
from mailgate.store.models import Tenant

CLI_KEY_NAME = "made by mailgate keys create"


@dataclass(frozen=True)
class IssuedKey:
    key: str
    key_id: str
    tenant_id: str
    tenant_name: str


def issue_api_key(
    engine: Engine, tenant_name: str, scopes: tuple[str, ...] = ("admin",), name: str = CLI_KEY_NAME
) -> IssuedKey:
    """Create the tenant if needed and a new key for it (an `admin` key unless told
    otherwise). The key is never stored."""
    with session_scope(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.name == tenant_name)).first()
        if tenant is None:
            tenant = Tenant(id=new_id("ten"), name=tenant_name)
            session.add(tenant)
            session.flush()
        key, row = new_key_row(tenant.id, name, list(scopes))
        session.add(row)
        return IssuedKey(key=key, key_id=row.id, tenant_id=tenant.id, tenant_name=tenant.name)
