"""Request and response models for /v1/accounts."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, ConfigDict, Field, model_validator
from typing_extensions import TypeAliasType

from mailgate.domain import examples as ex
from mailgate.domain.base import ResponseModel, StrictModel
from mailgate.domain.endpoint import AccountState, MailProtocol, Security, SyncState
from mailgate.domain.examples import examples

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_host(value: str) -> str:
    """A DNS name (RFC 1123) or an IP literal; no scheme, port, path or whitespace."""
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    name = value.rstrip(".")
    if len(name) > 253 or not name or not all(_HOST_LABEL.fullmatch(p) for p in name.split(".")):
        raise ValueError("must be a host name or an IP address, without scheme, port or path")
    return name.lower()


def no_control_chars(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters such as CR, LF or NUL")
    return value


Host = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_check_host)]


def _email(value: str) -> str:
    """An address's syntax (RFC 5321/5322, internationalized allowed), not whether its domain
    exists (no DNS). Domains without a dot are fine; special-use ones (``.invalid``,
    ``.localhost``, ``.local``) are refused, except ``.test`` (RFC 6761: for testing)."""
    try:
        checked = validate_email(
            value, check_deliverability=False, globally_deliverable=False, test_environment=True
        )
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return str(checked.normalized)


EmailAddress = Annotated[str, Field(min_length=3, max_length=320), AfterValidator(_email)]

Username = Annotated[str, Field(min_length=1, max_length=320), AfterValidator(no_control_chars)]
Password = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(no_control_chars)]
Name = Annotated[str, Field(max_length=200), AfterValidator(no_control_chars)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _unique_in_order(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


WatchedFolders = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=2100)]] | None,
    Field(max_length=1000),
    AfterValidator(_unique_in_order),
]
_WATCHED_DOC = (
    "IMAP only: ids (from the folder list) of the folders whose changes by other mail "
    "clients become events and changes; null: every folder; `[]`: none (changes made "
    "through the API are recorded all the same). Repeated ids count once."
)


_SEND_AS_DOC = (
    "Addresses this account may send as (`from`); null: its username, when that is an "
    "address. The first is the default `from`."
)
SendAs = Annotated[list[EmailAddress] | None, Field(max_length=50)]


class Pop3Policy(StrictModel):
    """What Mailgate may do to a POP3 maildrop. One model for the request, the answer (where
    every field is present), the store (columns ``pop3_<field>``) and the POP3 adapter."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )

    leave_on_server: bool = Field(
        True, description="Keep messages on the server after they are in Mailgate's store."
    )
    delete_after_days: int | None = Field(
        None, ge=1, le=36500, description="Delete from the server this many days after download."
    )
    purge_on_server: bool = Field(
        False, description="A permanent delete in Mailgate also deletes on the server."
    )
    keep_server_deleted: bool = Field(
        True,
        description="Keep messages that another client removed from the server (else they "
        "are removed here too).",
    )


Token = Annotated[str, Field(min_length=1, max_length=8192, pattern=r"^[\x21-\x7e]+$")]


class OAuth2Auth(StrictModel):
    """Tokens an integration got itself (bring your own token)."""

    type: Literal["oauth2"]
    app_id: str = Field(min_length=1, max_length=40, description="The OAuth2 app they are for.")
    access_token: Token
    refresh_token: Token | None = Field(None, description="Without it, no refresh is possible.")
    expires_at: datetime | None = Field(None, description="When the access token expires.")


class PasswordAuth(StrictModel):
    type: Literal["password"]
    password: Password = Field(description="Stored encrypted; never returned.")


AccountAuth = Annotated[OAuth2Auth | PasswordAuth, Field(discriminator="type")]
AuthType = TypeAliasType("AuthType", Literal["password", "oauth2"])


class AccountCreate(StrictModel):
    model_config = examples(ex.ACCOUNT_CREATE)

    protocol: MailProtocol = Field(description="How Mailgate talks to the mailbox.")
    host: Host | None = Field(
        None,
        description="Mail server host name or IP address. Required with a password; with "
        "OAuth2 the app's server for the protocol is the default.",
    )
    port: Port | None = Field(
        None, description="Default: 993/143 for IMAP, 995/110 for POP3 (tls / other)."
    )
    security: Security | None = Field(
        None, description="Implicit TLS (the default), STARTTLS/STLS, or none."
    )
    tls_verify: bool = Field(
        True, description="Verify the server certificate against the system trust store."
    )
    username: Username = Field(description="The login; with OAuth2, the mailbox's address.")
    password: Password | None = Field(
        None,
        description="Stored encrypted; never returned. The same as `auth` of type `password`.",
    )
    auth: AccountAuth | None = Field(
        None, description="How to log in: a password, or OAuth2 tokens. Give this or `password`."
    )
    name: Name | None = Field(None, description="A label for people.")
    pop3: Pop3Policy | None = Field(None, description="POP3 server policy (POP3 accounts only).")
    send_as: SendAs = Field(None, description=_SEND_AS_DOC)

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> AccountCreate:
        if (self.password is None) == (self.auth is None):
            raise ValueError("give either `password` or `auth`")
        if self.password is not None:
            self.auth = PasswordAuth(type="password", password=self.password)
            self.password = None
        if isinstance(self.auth, PasswordAuth) and self.host is None:
            raise ValueError("`host` is required with a password")
        return self


_NULLABLE = frozenset({"name", "watched_folders", "send_as"})


class AccountUpdate(StrictModel):
    """Only the fields given change. New connection settings are verified before saving."""

    host: Host | None = None
    port: Port | None = None
    security: Security | None = None
    tls_verify: bool | None = None
    username: Username | None = None
    password: Password | None = None
    name: Name | None = None
    pop3: Pop3Policy | None = None
    watched_folders: WatchedFolders = Field(None, description=_WATCHED_DOC)
    send_as: SendAs = Field(None, description=_SEND_AS_DOC)

    @model_validator(mode="after")
    def _null_only_where_allowed(self) -> AccountUpdate:
        nulled = [
            f for f in self.model_fields_set if f not in _NULLABLE and getattr(self, f) is None
        ]
        if nulled:
            raise ValueError(f"{', '.join(sorted(nulled))} cannot be null")
        return self


class SyncProgress(ResponseModel):
    """How far an account's first sync got (a POP3 account downloading its maildrop)."""

    messages_stored: int = Field(
        description="Messages downloaded from the server into Mailgate's store so far."
    )
    messages_on_server: int | None = Field(
        description="Messages the server listed when the sync last started (UIDL); null "
        "before a sync got that far."
    )


class AccountOut(ResponseModel):
    model_config = examples(ex.ACCOUNT_OUT, ex.POP3_ACCOUNT_SYNCING)

    id: str = Field(description="Opaque account id.")
    name: str | None
    protocol: MailProtocol
    host: str
    port: int
    security: Security
    tls_verify: bool
    username: str
    auth_type: AuthType = Field(description="How Mailgate logs in.")
    oauth2_app_id: str | None = Field(description="The OAuth2 app of an OAuth2 account.")
    pop3: Pop3Policy | None = Field(description="POP3 policy; null for IMAP accounts.")
    watched_folders: list[str] | None = Field(description=_WATCHED_DOC)
    send_as: list[str] = Field(
        description="The addresses it may send as; the first is the default."
    )
    state: AccountState = Field(description="The last known state of the mailbox connection.")
    state_detail: str | None = Field(description="Why, when the state is not `connected`.")
    sync_state: SyncState = Field(
        "running",
        description="`initializing` until the account's first sync has finished (a POP3 "
        "account downloading its mailbox, also while it is cut short and not yet resumed): "
        "until then its lists may lack mail that is on the server. `running` after that, "
        "and always for IMAP accounts (read live from the server).",
    )
    sync_progress: SyncProgress | None = Field(
        None, description="While `sync_state` is `initializing`: how far the first sync got."
    )
    created_at: datetime
    updated_at: datetime


class AccountList(ResponseModel):
    items: list[AccountOut]
