"""The sqlmodel tables. Migrations in migrations/ are generated from this metadata."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import AutoString, Field, SQLModel

from mailgate.domain.accounts import Pop3Policy
from mailgate.domain.endpoint import MailProtocol, Security


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored timestamp, timezone-aware: SQLite hands back naive datetimes, written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _timestamp(**kwargs: Any) -> Any:
    """A timezone-aware timestamp column that defaults to now (typed Any, as sqlmodel's
    own Field is at a column declaration)."""
    return Field(
        default_factory=utcnow,
        sa_type=sa.DateTime(timezone=True),
        nullable=False,
        **kwargs,
    )


class Tenant(SQLModel, table=True):
    __tablename__ = "tenant"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = _timestamp()


class ApiKey(SQLModel, table=True):
    """An API key; only its SHA-256 hash is stored, the key itself is shown once."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40, ondelete="CASCADE")
    prefix: str = Field(max_length=16, description="The first characters, to recognise a key.")
    key_hash: str = Field(max_length=64, unique=True)
    name: str = Field(default="", max_length=200)
    scopes: str = Field(
        default="admin", max_length=64, description="Space-separated scopes (domain.keys)."
    )
    account_ids: str | None = Field(
        default=None, sa_type=sa.Text, description="JSON list of the accounts it is bound to."
    )
    expires_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    rate_limit_per_minute: int | None = None
    created_at: datetime = _timestamp()
    last_used_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    revoked_at: datetime | None = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
    )


class RateCounter(SQLModel, table=True):
    """Requests counted in the current window of one subject (an API key, or a client
    address sending bad keys): one row each, shared by every process."""

    __tablename__ = "rate_counter"

    subject: str = Field(primary_key=True, max_length=100)
    window_start: int = Field(description="Unix time the window began.")
    count: int


class Account(SQLModel, table=True):
    """A mailbox behind the gateway. The password is Fernet-encrypted."""

    __tablename__ = "account"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40, ondelete="CASCADE")
    name: str | None = Field(default=None, max_length=200)
    protocol: MailProtocol = Field(sa_type=AutoString(length=8))
    host: str = Field(max_length=253)
    port: int
    security: Security = Field(sa_type=AutoString(length=8))
    tls_verify: bool = True
    username: str = Field(max_length=320)
    password_encrypted: str = Field(sa_type=sa.Text)  # "" for an OAuth2 account (AccountToken)
    auth_type: str = Field(default="password", max_length=16)
    oauth2_app_id: str | None = Field(
        default=None, foreign_key="oauth_app.id", index=True, max_length=40
    )
    # Sending (SMTP submission); no host: the account does not send. Username and password
    # default to the mailbox's credentials (its password or its OAuth2 token).
    smtp_host: str | None = Field(default=None, max_length=253)
    smtp_port: int | None = None
    smtp_security: str | None = Field(default=None, max_length=8)
    smtp_tls_verify: bool = True
    smtp_username: str | None = Field(default=None, max_length=320)
    smtp_password_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    smtp_save_sent_copy: bool = True
    send_as: str | None = Field(default=None, sa_type=sa.Text)  # JSON list; null: the username
    pop3_leave_on_server: bool = True
    pop3_delete_after_days: int | None = None
    pop3_purge_on_server: bool = False
    pop3_keep_server_deleted: bool = True
    watched_folders: str | None = Field(  # JSON list of IMAP folder ids; null: every folder
        default=None,
        sa_type=sa.Text,
    )
    state: str = Field(default="connected", max_length=32)
    state_detail: str | None = Field(default=None, max_length=500)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()

    def sender_addresses(self) -> list[str]:
        """What it may send as: ``send_as``, else its username when that is an address."""
        if self.send_as is not None:
            listed: list[str] = json.loads(self.send_as)
            return listed
        return [self.username] if "@" in self.username else []

    def pop3_policy(self) -> Pop3Policy:
        """The POP3 policy kept in the ``pop3_<field>`` columns."""
        return Pop3Policy(
            **{name: getattr(self, f"pop3_{name}") for name in Pop3Policy.model_fields}
        )

    def set_pop3_policy(self, policy: Pop3Policy) -> None:
        for name in Pop3Policy.model_fields:
            setattr(self, f"pop3_{name}", getattr(policy, name))


class MessageAlias(SQLModel, table=True):
    """Where a message that kept its id after a move lives now (IMAP COPYUID/MOVE)."""

    __tablename__ = "message_alias"
    __table_args__ = (
        sa.Index("ix_message_alias_location", "account_id", "folder_path", "uidvalidity", "uid"),
    )

    id: str = Field(primary_key=True, max_length=2100)
    account_id: str = Field(foreign_key="account.id", max_length=40, ondelete="CASCADE")
    folder_path: str = Field(max_length=1000)
    uidvalidity: int = Field(sa_type=sa.BigInteger)
    uid: int = Field(sa_type=sa.BigInteger)


class Pop3Folder(SQLModel, table=True):
    """A folder of a POP3 account: POP3 has none, so Mailgate keeps them."""

    __tablename__ = "pop3_folder"

    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40, ondelete="CASCADE")
    name: str = Field(max_length=200)
    parent_id: str | None = Field(default=None, max_length=40)
    role: str | None = Field(default=None, max_length=16)
    created_at: datetime = _timestamp()


class Pop3Message(SQLModel, table=True):
    """A message downloaded from a POP3 maildrop (or copied in Mailgate), with the state
    IMAP would keep on the server. ``seq`` orders a folder newest first; a purged message
    stays as a tombstone (raw dropped) so its UIDL is never downloaded again."""

    __tablename__ = "pop3_message"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "uidl", name="uq_pop3_message_uidl"),
        sa.Index("ix_pop3_message_listing", "account_id", "folder_id", "purged", "seq"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=40, unique=True)
    account_id: str = Field(foreign_key="account.id", max_length=40, ondelete="CASCADE")
    folder_id: str = Field(max_length=40)
    uidl: str | None = Field(default=None, max_length=100)
    raw: bytes = Field(sa_type=sa.LargeBinary)
    size: int
    subject: str | None = Field(default=None, sa_type=sa.Text)
    addresses: str = Field(default="{}", sa_type=sa.Text)
    from_text: str = Field(default="", sa_type=sa.Text)
    to_text: str = Field(default="", sa_type=sa.Text)
    search_text: str = Field(default="", sa_type=sa.Text)
    date: datetime | None = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
    )
    received_at: datetime = _timestamp()
    preview: str = Field(default="", sa_type=sa.Text)
    has_attachments: bool = False
    seen: bool = False
    flagged: bool = False
    answered: bool = False
    draft: bool = False
    keywords: str = Field(default="[]", sa_type=sa.Text)
    on_server: bool = True
    purged: bool = False
    described: bool = True  # false until the list/search columns are filled in from raw


class Pop3SyncState(SQLModel, table=True):
    """Per POP3 account: when it last synced and how the last sync ended (one sync at a time is
    the lease ``pop3-sync:<account id>``, store.leases); no ``last_sync_at`` yet: the first
    sync has not finished (store.first_sync)."""

    __tablename__ = "pop3_sync_state"

    account_id: str = Field(
        primary_key=True, foreign_key="account.id", max_length=40, ondelete="CASCADE"
    )
    last_sync_at: datetime | None = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
    )
    last_error: str | None = Field(default=None, max_length=500)
    messages_on_server: int | None = None
    """How many messages the server listed (UIDL) as the last session of the first sync
    began: how far that sync has to go (store.first_sync); not kept up after it."""


class ChangeLog(SQLModel, table=True):
    """Every created/updated/destroyed message and folder of an account, in order: the
    source of ``/changes`` (delta sync). ``account_seq`` counts per account (ChangeCounter)
    and is the state a client holds, so no tenant learns how busy the others are. Events of
    no message or folder (``message.sent``, ``account.error``) are rows of kind ``event``
    (object id: the event type), so that the event streams replay them in order; the change
    feed skips them."""

    __tablename__ = "change_log"
    __table_args__ = (
        sa.Index("ix_change_log_account_state", "account_id", "account_seq", unique=True),
    )

    seq: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="account.id", max_length=40, ondelete="CASCADE")
    account_seq: int
    kind: str = Field(max_length=16, description="message or folder")
    object_id: str = Field(max_length=2100)
    change: str = Field(max_length=16, description="created, updated or destroyed")
    event: str | None = Field(
        default=None,
        sa_type=sa.Text,
        description="The event body webhooks carry (JSON), which the event streams replay; "
        "null when the change is no event (mail there before anyone watched).",
    )
    created_at: datetime = _timestamp()


class OAuthApp(SQLModel, table=True):
    """A tenant's OAuth2 client at a provider; the client secret is Fernet-encrypted. Lists
    and server settings are JSON."""

    __tablename__ = "oauth_app"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40, ondelete="CASCADE")
    provider: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=200)
    client_id: str = Field(max_length=1000)
    client_secret_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    redirect_uri: str = Field(max_length=2000)
    return_to_allowed: str = Field(sa_type=sa.Text)
    scopes: str = Field(sa_type=sa.Text)
    authorization_url: str = Field(max_length=2000)
    token_url: str = Field(max_length=2000)
    userinfo_url: str | None = Field(default=None, max_length=2000)
    revocation_url: str | None = Field(default=None, max_length=2000)
    mail_servers: str = Field(sa_type=sa.Text)  # JSON: {protocol: {host, port, security}}
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class OAuthSignin(SQLModel, table=True):
    """A sign-in under way: found by the hash of its single-use ``state``, bound to the tenant
    (and, to reauthorize, the account) that started it; gone once used or expired."""

    __tablename__ = "oauth_signin"

    state_hash: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40, ondelete="CASCADE")
    app_id: str = Field(foreign_key="oauth_app.id", max_length=40, ondelete="CASCADE")
    account_id: str | None = Field(
        default=None, foreign_key="account.id", max_length=40, ondelete="CASCADE"
    )
    protocol: str = Field(max_length=8)
    name: str | None = Field(default=None, max_length=200)
    return_to: str = Field(max_length=2000)
    code_verifier_encrypted: str = Field(sa_type=sa.Text)
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class AccountToken(SQLModel, table=True):
    """An OAuth2 account's tokens (its app: ``Account.oauth2_app_id``), both
    Fernet-encrypted; a refresh replaces them together."""

    __tablename__ = "account_token"

    account_id: str = Field(
        primary_key=True, foreign_key="account.id", max_length=40, ondelete="CASCADE"
    )
    access_token_encrypted: str = Field(sa_type=sa.Text)
    refresh_token_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    expires_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = _timestamp()


class Submission(SQLModel, table=True):
    """A message to send, queued: the SMTP worker claims it (``claimed_until``, a lease),
    sends it and records the outcome. ``final_dot_at`` is set just before the server may
    accept it: a submission claimed again after that is never sent a second time."""

    __tablename__ = "submission"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "idempotency_key", name="uq_submission_idempotency"),
        sa.Index("ix_submission_due", "status", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40, ondelete="CASCADE")
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40, ondelete="CASCADE")
    idempotency_key: str | None = Field(default=None, max_length=255)
    status: str = Field(default="queued", max_length=16)
    message_id: str = Field(max_length=998)
    sender: str = Field(max_length=320)
    recipients: str = Field(sa_type=sa.Text)  # JSON list
    raw: bytes = Field(sa_type=sa.LargeBinary)
    attempts: int = 0
    next_attempt_at: datetime = _timestamp()
    claimed_until: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    claimed_by: str | None = Field(default=None, max_length=40)  # the holder (store.claims)
    final_dot_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    smtp_code: int | None = None
    smtp_response: str | None = Field(default=None, max_length=1000)
    sent_copy_id: str | None = Field(default=None, max_length=2100)
    # the message this one answers (it gets \\Answered once sent) or forwards ($Forwarded)
    answers_id: str | None = Field(default=None, max_length=2100)
    forwards_id: str | None = Field(default=None, max_length=2100)
    draft_id: str | None = Field(default=None, max_length=2100)  # a sent draft goes
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class Upload(SQLModel, table=True):
    """An attachment uploaded for sending, kept in the database (so every process sharing it
    can send it) until ``expires_at``."""

    __tablename__ = "upload"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", max_length=40, ondelete="CASCADE")
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40, ondelete="CASCADE")
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int = Field(sa_type=sa.BigInteger)
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = _timestamp()
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)


class DraftOrigin(SQLModel, table=True):
    """The message a draft answers or forwards, by the draft's Message-ID (without angle
    brackets): a draft keeps no id of Mailgate's in its headers, and its original is marked
    (``\\Answered``, ``$Forwarded``) once it is sent."""

    __tablename__ = "draft_origin"

    account_id: str = Field(
        primary_key=True, foreign_key="account.id", max_length=40, ondelete="CASCADE"
    )
    message_id: str = Field(primary_key=True, max_length=998)
    answers_id: str | None = Field(default=None, max_length=2100)
    forwards_id: str | None = Field(default=None, max_length=2100)
    created_at: datetime = _timestamp()


class ChangeCounter(SQLModel, table=True):
    """The last change number given out per account (the account's current state)."""

    __tablename__ = "change_counter"

    account_id: str = Field(
        primary_key=True, foreign_key="account.id", max_length=40, ondelete="CASCADE"
    )
    last: int


class WebhookEndpoint(SQLModel, table=True):
    """Where a tenant wants events delivered; the signing secret is Fernet-encrypted."""

    __tablename__ = "webhook_endpoint"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=40, ondelete="CASCADE")
    url: str = Field(max_length=2000)
    events: str = Field(default="[]", sa_type=sa.Text)
    account_ids: str | None = Field(default=None, sa_type=sa.Text)
    secret_encrypted: str = Field(sa_type=sa.Text)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=500)
    consecutive_failures: int = 0
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class WebhookEvent(SQLModel, table=True):
    """The outbox: one row per event and endpoint, written in the transaction of the
    change; the dispatcher claims due rows, delivers them and records each attempt."""

    __tablename__ = "webhook_event"
    __table_args__ = (sa.Index("ix_webhook_event_due", "status", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=40, description="Also the webhook-id header.")
    endpoint_id: str = Field(
        foreign_key="webhook_endpoint.id", index=True, max_length=40, ondelete="CASCADE"
    )
    type: str = Field(max_length=40)
    payload: str = Field(sa_type=sa.Text)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _timestamp()
    claimed_until: datetime | None = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
    )
    claimed_by: str | None = Field(default=None, max_length=40)  # the holder (store.claims)
    created_at: datetime = _timestamp()
    delivered_at: datetime | None = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
    )


class WebhookDelivery(SQLModel, table=True):
    """One delivery attempt of one event: what the receiver answered, or why it failed."""

    __tablename__ = "webhook_delivery"

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(
        foreign_key="webhook_event.id", index=True, max_length=40, ondelete="CASCADE"
    )
    endpoint_id: str = Field(index=True, max_length=40)
    attempt: int
    succeeded: bool
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    response_body: str | None = Field(default=None, max_length=2048)
    duration_ms: float = 0.0
    attempted_at: datetime = _timestamp()


class ImapFolderState(SQLModel, table=True):
    """How far the watcher has seen one IMAP folder, so a restart neither replays old mail
    as new nor misses mail that came while it was down."""

    __tablename__ = "imap_folder_state"

    account_id: str = Field(
        primary_key=True, foreign_key="account.id", max_length=40, ondelete="CASCADE"
    )
    folder_path: str = Field(primary_key=True, max_length=1000)
    uidvalidity: int = Field(sa_type=sa.BigInteger)
    uidnext: int = Field(sa_type=sa.BigInteger)
    highestmodseq: int | None = Field(default=None, sa_type=sa.BigInteger)
    messages: int | None = Field(default=None, description="How many messages uids holds.")
    uids: str | None = Field(
        default=None,
        sa_type=sa.Text,
        description="The folder's UIDs as an IMAP sequence set, to tell which were expunged; "
        "null: not watched (yet), the next watched round takes a baseline.",
    )
    flag_window: str | None = Field(
        default=None,
        sa_type=sa.Text,
        description="Servers without CONDSTORE: JSON {uid: digest of its flags} of the newest "
        "messages, to find flag changes by comparing.",
    )


class ImapOwnChange(SQLModel, table=True):
    """A change the gateway itself made on the IMAP server (and already emitted): the watcher
    skips it when it sees it, so the same change never becomes two events."""

    __tablename__ = "imap_own_change"

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=40, ondelete="CASCADE")
    folder_path: str = Field(max_length=1000)
    uidvalidity: int = Field(sa_type=sa.BigInteger)
    uid: int = Field(sa_type=sa.BigInteger)
    change: str = Field(
        max_length=16,
        description="created, updated, destroyed; made (a folder the API created, empty)",
    )
    modseq: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = _timestamp()


class Lease(SQLModel, table=True):
    """Who does a piece of background work (such as watching one account) until when, so
    several gateway processes never do it twice."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=100)
    owner: str = Field(max_length=100)
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class IdempotencyRecord(SQLModel, table=True):
    """A POST sent with an ``Idempotency-Key``: claimed (``running``) while it executes, then
    the answer it got, for a retry of the same request within a day (api.idempotency).
    ``scope`` is the SHA-256 of the caller's API key (as ``api_key.key_hash``); ``claim``
    names the execution that holds the row, so only it completes or releases it."""

    __tablename__ = "idempotency_record"

    scope: str = Field(primary_key=True, max_length=64)
    idem_key: str = Field(primary_key=True, max_length=255)
    claim: str = Field(max_length=32)
    running: bool = True
    fingerprint: str | None = Field(default=None, max_length=64)  # SHA-256 of the request
    status_code: int | None = None
    content_type: str | None = Field(default=None, max_length=255)
    location: str | None = Field(default=None, sa_type=sa.Text)
    body: bytes | None = Field(default=None, sa_type=sa.LargeBinary)  # Fernet-encrypted
    created_at: datetime = _timestamp(index=True)
