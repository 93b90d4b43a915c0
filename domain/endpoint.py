"""Where and how to reach a mailbox: everything an adapter needs to log in."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal

# The protocols and security modes an account may name. What each protocol can do is asked
# of mailgate.adapters.registry, the one place that tells them apart.
MailProtocol = Literal["imap", "pop3"]
Security = Literal["tls", "starttls", "none"]
AccountState = Literal["connected", "auth_failed", "unreachable", "error"]


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
    read_timeout: float = 60.0

    def ssl_context(self) -> ssl.SSLContext:
        """The system trust store (honours SSL_CERT_FILE), unless verification is opted out."""
        context = ssl.create_default_context()
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
