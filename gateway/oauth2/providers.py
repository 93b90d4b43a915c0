"""What ``google`` and ``microsoft`` imply: endpoints, mail scopes, mail servers, and the extra
authorization parameters that get a refresh token."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailgate.domain.oauth2 import MailServer


@dataclass(frozen=True)
class ProviderDefaults:
    authorization_url: str
    token_url: str
    scopes: tuple[str, ...]
    userinfo_url: str | None = None
    revocation_url: str | None = None
    imap: MailServer | None = None
    pop3: MailServer | None = None
    # extra query parameters of the authorization URL
    authorize_params: dict[str, str] = field(default_factory=dict)


PROVIDERS: dict[str, ProviderDefaults] = {
    "google": ProviderDefaults(
        authorization_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL
        userinfo_url="https://openidconnect.googleapis.com/v1/userinfo",
        revocation_url="https://oauth2.googleapis.com/revoke",
        scopes=("https://mail.google.com/", "openid", "email"),
        imap=MailServer(host="imap.gmail.com", port=993, security="tls"),
        pop3=MailServer(host="pop.gmail.com", port=995, security="tls"),
        # a refresh token is only given offline, and again only with consent asked again
        authorize_params={"access_type": "offline", "prompt": "consent"},
    ),
    "microsoft": ProviderDefaults(
        authorization_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",  # noqa: S106
        scopes=(
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/POP.AccessAsUser.All",
            "offline_access",
            "openid",
            "email",
        ),
        imap=MailServer(host="outlook.office365.com", port=993, security="tls"),
        pop3=MailServer(host="outlook.office365.com", port=995, security="tls"),
    ),
    "custom": ProviderDefaults(authorization_url="", token_url="", scopes=()),
}
