"""Request and response models for /v1/keys, and what each scope allows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, model_validator
from typing_extensions import TypeAliasType

from mailgate.domain import examples as ex
from mailgate.domain.accounts import no_control_chars
from mailgate.domain.base import ResponseModel, StrictModel
from mailgate.domain.examples import examples
from mailgate.domain.webhooks import AccountIds

_Scope = Literal["read", "write", "send", "admin"]
Scope = TypeAliasType("Scope", _Scope)  # one named enum in the OpenAPI document
SCOPES: tuple[str, ...] = get_args(_Scope)
# What a scope brings with it: `write` reads too, `admin` may do everything.
_IMPLIED: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
    "send": frozenset({"send"}),
    "admin": frozenset(SCOPES),
}
SCOPES_DOC = (
    "`read`: read accounts, folders, messages, changes and event streams; `write`: change "
    "messages, folders and drafts (and read); `send`: send mail, upload attachments, read "
    "submissions; `admin`: everything, and manage accounts, webhooks, OAuth2 apps and keys. "
    "An `admin` key cannot be bound to accounts."
)


def effective_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Every scope the given ones allow (``write`` allows ``read``; ``admin`` everything)."""
    return frozenset().union(*(_IMPLIED.get(scope, frozenset()) for scope in scopes))


@dataclass(frozen=True)
class KeyGrant:
    """What a live key may do: its tenant, scopes (with those they imply), accounts."""

    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    account_ids: frozenset[str] | None  # None: every account of the tenant
    expires_at: datetime | None
    rate_limit_per_minute: int | None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def sees(self, account_id: str) -> bool:
        return self.account_ids is None or account_id in self.account_ids

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _unique_scopes(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a scope")
    return values


class KeyCreate(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_control_chars)] = (
        Field(description="What the key is for, shown in lists (`mobile app of alice`).")
    )
    scopes: Annotated[
        list[Scope], Field(min_length=1, max_length=len(SCOPES)), AfterValidator(_unique_scopes)
    ] = Field(description=SCOPES_DOC)
    account_ids: AccountIds = Field(
        None,
        description="Only these accounts: others answer `404` as if they did not exist, and "
        "lists and event streams leave them out. null: every account of the tenant.",
    )
    expires_at: datetime | None = Field(
        None,
        description="When the key stops working (answers `401`); must be in the future, with "
        "a time zone. null: never.",
    )
    rate_limit_per_minute: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Requests a minute this key may make; null: the server's default "
        "(`MAILGATE_RATE_LIMIT_PER_MINUTE`).",
    )

    model_config = examples(ex.KEY_CREATE)

    @model_validator(mode="after")
    def _admin_is_unbound(self) -> KeyCreate:
        if "admin" in self.scopes and self.account_ids is not None:
            raise ValueError("an `admin` key manages the whole tenant: omit `account_ids`")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("`expires_at` needs a time zone (`Z` or `+01:00`)")
        return self


class KeyOut(ResponseModel):
    id: str = Field(description="Opaque key id (`key_…`), for `GET`/`DELETE /v1/keys/{id}`.")
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    scopes: list[Scope]
    account_ids: list[str] | None = Field(description="null: every account of the tenant.")
    expires_at: datetime | None = Field(description="null: never.")
    rate_limit_per_minute: int | None = Field(description="null: the server's default.")
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="When the key was last used (to the minute); null: never."
    )

    model_config = examples(ex.KEY_OUT)


class KeyCreated(KeyOut):
    key: str = Field(
        description="The API key, for `Authorization: Bearer`. Shown in this answer only: "
        "Mailgate keeps a hash of it."
    )

    model_config = examples({**ex.KEY_OUT, "key": ex.API_KEY})


class KeyList(ResponseModel):
    items: list[KeyOut] = Field(description="The tenant's live keys (not deleted), oldest first.")
