"""The sqlmodel tables. Migrations in migrations/ are generated from this metadata."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp(**kwargs: object) -> object:
    return Field(
        default_factory=utcnow,
        sa_type=sa.DateTime(timezone=True),  # type: ignore[call-overload]
        nullable=False,
        **kwargs,
    )


class Tenant(SQLModel, table=True):
    __tablename__ = "tenant"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = _timestamp()  # type: ignore[assignment]


class ApiKey(SQLModel, table=True):
    """An API key; only its SHA-256 hash is stored, the key itself is shown once."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40, ondelete="CASCADE")
    prefix: str = Field(max_length=16, description="The first characters, to recognise a key.")
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _timestamp()  # type: ignore[assignment]
    revoked_at: datetime | None = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),  # type: ignore[call-overload]
    )


class Account(SQLModel, table=True):
    """A mailbox behind the gateway. The password is Fernet-encrypted."""

    __tablename__ = "account"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40, ondelete="CASCADE")
    name: str | None = Field(default=None, max_length=200)
    protocol: str = Field(max_length=8)
    host: str = Field(max_length=253)
    port: int
    security: str = Field(max_length=8)
    tls_verify: bool = True
    username: str = Field(max_length=320)
    password_encrypted: str = Field(sa_type=sa.Text)  # type: ignore[call-overload]
    pop3_leave_on_server: bool = True
    pop3_delete_after_days: int | None = None
    state: str = Field(default="connected", max_length=32)
    state_detail: str | None = Field(default=None, max_length=500)
    created_at: datetime = _timestamp()  # type: ignore[assignment]
    updated_at: datetime = _timestamp()  # type: ignore[assignment]


class MessageAlias(SQLModel, table=True):
    """Where a message that kept its id after a move lives now (IMAP COPYUID/MOVE)."""

    __tablename__ = "message_alias"
    __table_args__ = (
        sa.Index("ix_message_alias_location", "account_id", "folder_path", "uidvalidity", "uid"),
    )

    id: str = Field(primary_key=True, max_length=2100)
    account_id: str = Field(foreign_key="account.id", max_length=40, ondelete="CASCADE")
    folder_path: str = Field(max_length=1000)
    uidvalidity: int = Field(sa_type=sa.BigInteger)  # type: ignore[call-overload]
    uid: int = Field(sa_type=sa.BigInteger)  # type: ignore[call-overload]
