"""Assertions and request bodies shared by the API tests."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
from sqlmodel import Session

from mailgate.gateway.context import Gateway
from mailgate.store.models import Account
from tests.harness.dovecot import MailUser

if TYPE_CHECKING:
    from tests.test_imap_mail import Mailbox


def account_body(protocol: str, port: int, user: MailUser, **extra: Any) -> dict[str, Any]:
    """What POST /v1/accounts takes for ``user`` on the test Dovecot (plain, loopback)."""
    return {
        "protocol": protocol,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": user.username,
        "password": user.password,
        **extra,
    }


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, object]:
    """The answer is problem+json with this status and type; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == type_, body
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


def watch_round(gateway: Gateway, box: Mailbox) -> None:
    """One look at the server for the account, as `mailgate serve` runs them (IMAP: a watch
    round; POP3: a sync)."""
    with Session(gateway.engine) as session:
        account = session.get(Account, box.account_id)
        assert account is not None
        gateway.mailboxes.adapter(account).refresh()


class Names:
    """A resolver for names of the test's own, counting its lookups."""

    def __init__(self, **names: list[str]) -> None:
        self.names = {name.replace("_", "."): addresses for name, addresses in names.items()}
        self.lookups = 0

    def __call__(self, host: str, port: int, *_: Any, **__: Any) -> Sequence[tuple[Any, ...]]:
        self.lookups += 1
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in self.names[host]
        ]
