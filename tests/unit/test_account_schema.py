"""Account input rules that need no server: host names, default ports."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailgate.adapters.registry import default_port
from mailgate.domain.accounts import AccountCreate

BASE = {"protocol": "imap", "username": "u", "password": "p"}


@pytest.mark.parametrize(
    "host,stored",
    [
        ("Mail.Example.COM", "mail.example.com"),
        ("imap.example.com.", "imap.example.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("localhost", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_good_hosts_are_normalised(host: str, stored: str) -> None:
    assert AccountCreate.model_validate({**BASE, "host": host}).host == stored


@pytest.mark.parametrize(
    "host",
    [
        "",
        "a b",
        "host\n",
        "imap://host",
        "host:993",
        "host/path",
        "user@host",
        "-bad.example",
        "a" * 64 + ".example",
        ".",
        "a..b",
        "bücher.example",
    ],
)
def test_bad_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValidationError):
        AccountCreate.model_validate({**BASE, "host": host})


@pytest.mark.parametrize(
    "protocol,security,port",
    [
        ("imap", "tls", 993),
        ("imap", "starttls", 143),
        ("imap", "none", 143),
        ("pop3", "tls", 995),
        ("pop3", "starttls", 110),
        ("pop3", "none", 110),
    ],
)
def test_default_ports(protocol: str, security: str, port: int) -> None:
    assert default_port(protocol, security) == port
