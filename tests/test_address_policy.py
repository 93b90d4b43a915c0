"""Which addresses Mailgate connects to for a mailbox: the one lookup of the host name,
checked by MAILGATE_ALLOW_PRIVATE_MAILBOXES (off: private, loopback and link-local hosts are
refused for multi-tenant deployments), and the connection goes to exactly those addresses.

A resolver of the test's own names hosts no DNS knows (``*.mailgate.test``), so a connection
that looked the name up again would fail: it can only succeed at the checked address.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailgate.adapters._net import accepts_connections
from mailgate.adapters.imap.connect import logout_quietly, open_imap
from mailgate.adapters.pop3.connect import open_pop3
from mailgate.api.app import create_app
from mailgate.domain.endpoint import MailboxEndpoint, Security
from mailgate.domain.errors import MailboxHostNotAllowed, MailboxTLSError
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.net import free_port
from tests.helpers import Names, account_body, assert_problem


def _endpoint(
    host: str, port: int, user: MailUser, security: Security = "none", **extra: Any
) -> MailboxEndpoint:
    return MailboxEndpoint(
        account_id="acc_test",
        host=host,
        port=port,
        security=security,
        username=user.username,
        password=user.password,
        connect_timeout=5.0,
        **extra,
    )


def test_the_connection_goes_to_the_address_the_name_resolved_to(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    names = Names(imap_mailgate_test=["127.0.0.1"])
    client = open_imap(_endpoint("imap.mailgate.test", dovecot.imap_port, mail_user), names)
    try:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    finally:
        logout_quietly(client)
    pop3 = open_pop3(_endpoint("imap.mailgate.test", dovecot.pop3_port, mail_user), names)
    try:
        assert pop3.stat() == (0, 0)
    finally:
        pop3.quit()
    assert names.lookups == 2  # one lookup per connection, none behind it


def test_each_address_is_tried_in_turn(dovecot: DovecotServer, mail_user: MailUser) -> None:
    """127.0.0.2 is loopback too, but nothing listens there: refused, then the next one."""
    names = Names(imap_mailgate_test=["127.0.0.2", "127.0.0.1"])
    client = open_imap(_endpoint("imap.mailgate.test", dovecot.imap_port, mail_user), names)
    logout_quietly(client)


def test_tls_checks_the_certificate_against_the_name_not_the_address(
    dovecot: DovecotServer, mail_user: MailUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test certificate names localhost and 127.0.0.1: reached at 127.0.0.1 under a name
    it does not list, the handshake must fail; under localhost it must succeed."""
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.ca_file))
    names = Names(imap_mailgate_test=["127.0.0.1"], localhost=["127.0.0.1"])
    wrong = _endpoint("imap.mailgate.test", dovecot.imaps_port, mail_user, "tls")
    with pytest.raises(MailboxTLSError, match="not trusted"):
        open_imap(wrong, names)
    with pytest.raises(MailboxTLSError, match="not trusted"):
        open_pop3(_endpoint("imap.mailgate.test", dovecot.pop3_port, mail_user, "starttls"), names)
    logout_quietly(open_imap(_endpoint("localhost", dovecot.imaps_port, mail_user, "tls"), names))


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["127.0.0.1"], "loopback"),
        (["8.8.8.8", "10.1.2.3"], "private"),  # one bad address refuses the name
        (["169.254.169.254"], "link-local"),  # a cloud's metadata service
    ],
)
def test_a_strict_deployment_refuses_private_hosts_without_connecting(
    dovecot: DovecotServer, mail_user: MailUser, addresses: list[str], reason: str
) -> None:
    names = Names(imap_mailgate_test=addresses)
    strict = _endpoint("imap.mailgate.test", dovecot.imap_port, mail_user, allow_private=False)
    with pytest.raises(MailboxHostNotAllowed, match=reason):
        open_imap(strict, names)
    with pytest.raises(MailboxHostNotAllowed, match=reason):
        open_pop3(strict, names)


def test_the_outage_probe_keeps_to_the_address_policy(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    """A watcher whose server went away probes it with a bare TCP connection: to the
    addresses the name resolves to, and never to a private one a strict deployment refuses
    (the probe once went around the policy with socket.create_connection)."""
    names = Names(imap_mailgate_test=["127.0.0.1"])
    allowed = _endpoint("imap.mailgate.test", dovecot.imap_port, mail_user)
    strict = _endpoint("imap.mailgate.test", dovecot.imap_port, mail_user, allow_private=False)
    assert accepts_connections(allowed, 2.0, names)
    assert not accepts_connections(strict, 2.0, names)
    closed = _endpoint("imap.mailgate.test", free_port(), mail_user)
    assert not accepts_connections(closed, 2.0, names)


@pytest.fixture
def strict_client(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    gw = Gateway.from_settings(make_settings(tmp_path, sqlite_url, allow_private_mailboxes=False))
    upgrade(gw.engine)
    auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'tenant-a').key}"}
    with TestClient(create_app(gw), raise_server_exceptions=False) as client:
        yield client, auth
    gw.close()


def test_adding_a_private_host_is_refused_alike_whatever_listens_there(
    strict_client: tuple[TestClient, dict[str, str]], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    """An open IMAP port, a closed port and a silent address answer the same: the gateway is
    no port scanner of its own network."""
    client, auth = strict_client
    with socket.create_server(("127.0.0.1", 0)) as closed:
        closed_port = closed.getsockname()[1]
    answers = {}
    for host, port in [
        ("127.0.0.1", dovecot.imap_port),
        ("127.0.0.1", closed_port),
        ("localhost", dovecot.pop3_port),
        ("10.255.255.1", 143),
        ("::1", 143),
    ]:
        body = account_body("imap", port, mail_user, host=host)
        answer = client.post("/v1/accounts", json=body, headers=auth)
        answers[host, port] = assert_problem(answer, 422, "mailbox-host-not-allowed")["detail"]
    assert answers["127.0.0.1", dovecot.imap_port] == answers["127.0.0.1", closed_port]
    assert "loopback" in str(answers["localhost", dovecot.pop3_port])
    assert "private" in str(answers["10.255.255.1", 143])
    assert "MAILGATE_ALLOW_PRIVATE_MAILBOXES" in str(answers["::1", 143])
    assert client.get("/v1/accounts", headers=auth).json()["items"] == []
