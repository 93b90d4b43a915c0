"""Where and how to reach a mailbox: everything an adapter needs to log in."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["imap", "pop3"]
Security = Literal["tls", "starttls", "none"]

DEFAULT_PORTS: dict[tuple[str, str], int] = {
    ("imap", "tls"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "tls"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
}


def default_port(protocol: str, security: str) -> int:
    return DEFAULT_PORTS[(protocol, security)]


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
