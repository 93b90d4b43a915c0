"""Request and response models for the event streams (Server-Sent Events) and their tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mailgate.domain.base import StrictModel

TOKEN_TTL_DEFAULT = 300
TOKEN_TTL_MAX = 3600


class EventTokenCreate(StrictModel):
    account_id: str | None = Field(
        None,
        max_length=40,
        description="Bind the token to this account: it opens this account's stream only "
        "(the tenant-wide stream then carries this account's events alone). Default: every "
        "account of the tenant.",
    )
    ttl_seconds: int = Field(
        TOKEN_TTL_DEFAULT,
        ge=10,
        le=TOKEN_TTL_MAX,
        description="How long the token opens streams. A stream opened before it expires "
        "stays open.",
    )


class EventToken(BaseModel):
    token: str = Field(description="Pass it as `access_token` in the stream's query.")
    expires_at: datetime = Field(description="When the token stops opening streams.")
    account_id: str | None = Field(description="The account it is bound to, if any.")
