"""An IMAP account nobody reads holds no pooled connection: the reaper closes those idle past
``MAILGATE_IMAP_POOL_IDLE`` (issue 15: the login's connection was still open 330 s later).
Real Dovecot behind the plain proxy, which counts the connections open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailgate.api.app import create_app
from mailgate.events.reaper import PoolReaper
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.proxy import FaultProxy
from tests.helpers import account_body

IDLE = 0.3  # seconds a pooled connection may rest here


@pytest.fixture
def quick_gateway(tmp_path: Path, sqlite_url: str) -> Iterator[Gateway]:
    gw = Gateway.from_settings(make_settings(tmp_path, sqlite_url, imap_pool_idle=IDLE))
    upgrade(gw.engine)
    yield gw
    gw.close()


def until(condition: object, seconds: float = 10.0) -> bool:
    """Whether ``condition()`` came true within ``seconds`` (the proxy closes its side of a
    connection in its own thread)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_idle_pooled_connections_are_closed_and_reading_opens_one_again(
    quick_gateway: Gateway, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    auth = {"Authorization": f"Bearer {issue_api_key(quick_gateway.engine, 'shop').key}"}
    reaper = PoolReaper(quick_gateway)
    with (
        FaultProxy((dovecot.host, dovecot.imap_port)) as proxy,
        TestClient(create_app(quick_gateway)) as client,
    ):
        body = account_body("imap", proxy.port, mail_user)
        made = client.post("/v1/accounts", json=body, headers=auth)
        assert made.status_code == 201, made.text
        messages = f"/v1/accounts/{made.json()['id']}/messages"
        assert client.get(messages, headers=auth).status_code == 200
        assert proxy.open_connections >= 1  # the list's connection rests in the pool
        time.sleep(IDLE + 0.1)  # past the limit (the unit test has one within it)
        assert reaper.reap() >= 1
        assert until(lambda: proxy.open_connections == 0), "a pooled connection stayed open"
        assert client.get(messages, headers=auth).status_code == 200  # opens one again
        assert proxy.open_connections == 1
