"""Where and how to reach a mailbox: everything an adapter needs to log in."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal, Protocol

from typing_extensions import TypeAliasType

from mailgate.domain.addresses import pinned_context

# The protocols and security modes an account may name. What each protocol can do is asked
# of mailgate.adapters.registry, the one place that tells them apart.
# Named aliases (TypeAliasType): each is one named enum of the OpenAPI document, so a client
# generator makes one type of it wherever it is used.
MailProtocol = TypeAliasType("MailProtocol", Literal["imap", "pop3"])
Security = TypeAliasType("Security", Literal["tls", "starttls", "none"])
AccountState = TypeAliasType(
    "AccountState", Literal["connected", "auth_failed", "unreachable", "error"]
)
SyncState = TypeAliasType("SyncState", Literal["initializing", "running"])
"""Whether Mailgate has the whole mailbox yet: ``initializing`` while a POP3 account's first
sync has not finished (running, or cut short and not yet resumed), so its lists may lack
mail that is on the server; ``running`` once it has, and always for IMAP (read live)."""


class TokenSource(Protocol):
    """The access token of an OAuth2 account, kept fresh (mailgate.gateway.oauth2.tokens)."""

    def __call__(self, refused: str | None) -> str:
        """A valid access token. ``refused``: the token the server just refused, to be
        replaced (unless another process has already replaced it)."""


class OperationObserver(Protocol):
    """Told of every adapter operation once it ends (mailgate.gateway.metrics)."""

    def __call__(
        self, operation: str, server: str, seconds: float, error: BaseException | None
    ) -> None:
        """``operation``: the oplog's name (``imap.verify``); ``server``: the host;
        ``error``: what it raised, or None."""


@dataclass(frozen=True)
class MailboxEndpoint:
    account_id: str
    host: str
    port: int
    security: Security
    username: str
    password: str = field(repr=False)
    tls_verify: bool = True
    connect_timeout: float = 15.0
    # IMAP: the deadline of each pooled operation; both protocols: the longest wait for a read
    read_timeout: float = 30.0
    # IMAP: how long a pooled connection may rest unused before it is closed
    pool_idle: float = 240.0
    # False: refuse hosts that resolve to private, loopback or link-local addresses
    allow_private: bool = True
    # an OAuth2 account's tokens (then ``password`` is empty): SASL OAUTHBEARER or XOAUTH2
    token: TokenSource | None = field(default=None, repr=False, compare=False)
    # who counts the operations on this mailbox (the gateway's metrics), if anyone
    observer: OperationObserver | None = field(default=None, repr=False, compare=False)

    def ssl_context(self) -> ssl.SSLContext:
        """The system trust store (honours SSL_CERT_FILE), unless verification is opted out.
        The certificate is checked against ``host`` even though the connection is opened to
        the address it resolved to (mailgate.domain.addresses)."""
        return pinned_context(self.host, verify=self.tls_verify)
