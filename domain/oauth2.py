"""Request and response models for OAuth2 apps (/v1/oauth2/apps) and OAuth2 sign-ins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field
from typing_extensions import TypeAliasType

from mailgate.domain.accounts import Host, Name, Port, Username
from mailgate.domain.base import ResponseModel, StrictModel
from mailgate.domain.endpoint import MailProtocol, Security
from mailgate.domain.webhooks import check_url_shape

OAuth2Provider = TypeAliasType("OAuth2Provider", Literal["google", "microsoft", "custom"])

Url = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(check_url_shape)]
Scope = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")]
ClientText = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[\x20-\x7e]+$")]


class MailServer(StrictModel):
    """Where an app's accounts read mail over one protocol (asked and answered: every
    field is in the answer)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    host: Host
    port: Port
    security: Security = "tls"


class OAuthAppCreate(StrictModel):
    provider: OAuth2Provider = Field(
        description="`google` and `microsoft` fill in their endpoints, mail scopes and mail "
        "servers; `custom` needs `authorization_url` and `token_url`."
    )
    name: Name | None = Field(None, description="A label for people.")
    client_id: ClientText = Field(description="The client id the provider gave the app.")
    client_secret: ClientText | None = Field(
        None, description="Stored encrypted; never returned. Omit for a public client (PKCE)."
    )
    redirect_uri: Url = Field(
        description="Mailgate's callback as registered with the provider: this gateway's "
        "public URL and `/v1/oauth2/callback`."
    )
    return_to_allowed: list[Url] = Field(
        min_length=1,
        max_length=50,
        description="Where a finished sign-in may send the browser: each `return_to` must "
        "start with one of these URLs (same scheme, host and port, path prefix).",
    )
    scopes: list[Scope] | None = Field(
        None, max_length=50, description="Default: the provider's mail scopes."
    )
    authorization_url: Url | None = Field(None, description="Overrides the provider's.")
    token_url: Url | None = Field(None, description="Overrides the provider's.")
    userinfo_url: Url | None = Field(
        None, description="Where the address is learnt when the token has no id_token email."
    )
    revocation_url: Url | None = Field(
        None, description="RFC 7009 endpoint; a deleted account's refresh token is revoked."
    )
    imap: MailServer | None = Field(None, description="Default: the provider's IMAP server.")
    pop3: MailServer | None = Field(None, description="Default: the provider's POP3 server.")


class OAuthAppUpdate(StrictModel):
    """Only the fields given change."""

    name: Name | None = None
    client_id: ClientText | None = None
    client_secret: ClientText | None = None
    redirect_uri: Url | None = None
    return_to_allowed: list[Url] | None = Field(None, min_length=1, max_length=50)
    scopes: list[Scope] | None = Field(None, max_length=50)
    authorization_url: Url | None = None
    token_url: Url | None = None
    userinfo_url: Url | None = None
    revocation_url: Url | None = None
    imap: MailServer | None = None
    pop3: MailServer | None = None


class OAuthAppOut(ResponseModel):
    id: str
    provider: OAuth2Provider
    name: str | None
    client_id: str
    has_client_secret: bool = Field(description="The secret itself is never returned.")
    redirect_uri: str
    return_to_allowed: list[str]
    scopes: list[str]
    authorization_url: str
    token_url: str
    userinfo_url: str | None
    revocation_url: str | None
    imap: MailServer | None
    pop3: MailServer | None
    created_at: datetime
    updated_at: datetime


class OAuthAppList(ResponseModel):
    items: list[OAuthAppOut]


class AuthorizeRequest(StrictModel):
    return_to: Url = Field(
        description="Where the browser goes when the sign-in is done: with `account_id` on "
        "success, with `error` (a problem type) and `error_description` otherwise. Must "
        "match the app's `return_to_allowed`."
    )
    protocol: MailProtocol = Field("imap", description="How the new account reads mail.")
    name: Name | None = Field(None, description="A label for the new account.")
    login_hint: Username | None = Field(None, description="Passed to the provider.")


class ReauthorizeRequest(StrictModel):
    return_to: Url = Field(description="As for a new sign-in; must match the app's allow-list.")


class AuthorizeAnswer(ResponseModel):
    authorization_url: str = Field(description="Send the user's browser here.")
    expires_at: datetime = Field(description="The sign-in must be finished by then.")
