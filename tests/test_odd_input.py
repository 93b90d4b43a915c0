"""Odd but harmless input that once answered 500 (issue 11, "Other 500s"): each is a clear
answer now, tested against the real Dovecot."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.harness.dovecot import DovecotServer
from tests.helpers import account_body, assert_problem
from tests.mail_factory import dated
from tests.test_contract import box, database_url  # noqa: F401  (fixtures)
from tests.test_imap_mail import Mailbox


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_non_ascii_credentials(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, protocol: str
) -> None:
    user = dovecot.add_user(password="pässwörd-ünïcode")
    port = dovecot.imap_port if protocol == "imap" else dovecot.pop3_port
    made = client.post("/v1/accounts", json=account_body(protocol, port, user), headers=auth)
    assert made.status_code == 201, made.text
    wrong = account_body(protocol, port, user, password="fälsch")
    assert_problem(
        client.post("/v1/accounts", json=wrong, headers=auth), 422, "mailbox-auth-failed"
    )


def test_extreme_dates_cursors_and_states(box: Mailbox) -> None:  # noqa: F811
    box.server.deliver(box.user, dated(2))
    for params in (
        {"since": "0001-01-01T00:00:00Z"},
        {"before": "9999-12-31T12:00:00Z"},
        {"since": "0001-01-01T00:00:00Z", "before": "9999-12-31T23:59:59Z"},
    ):
        answer = box.call("GET", "/messages", params=params)
        assert answer.status_code == 200, (params, answer.text)
        assert len(answer.json()["items"]) == 2
    deep = "[" * 2040
    assert_problem(box.call("GET", "/messages", params={"cursor": deep}), 422, "invalid-cursor")
    huge = json.dumps(["INBOX", 1, 2**80, "x"]).encode()
    forged = base64.urlsafe_b64encode(huge).decode().rstrip("=")
    assert_problem(box.call("GET", "/messages", params={"cursor": forged}), 422, "invalid-cursor")
    for state in ("9223372036854775808", "²", "٣", "1" * 19):
        answer = box.call("GET", "/changes", params={"since": state})
        assert_problem(answer, 410, "cannot-calculate-changes")


def test_a_keyword_the_server_refuses(box: Mailbox) -> None:  # noqa: F811
    box.server.deliver(box.user, dated(1))
    [message] = box.messages()
    long = "k" * 100  # the schema allows 100; a server may allow less
    answer = box.call("PATCH", f"/messages/{message['id']}", json={"keywords_add": [long]})
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        assert "refused" in answer.json()["detail"]
    assert box.call("GET", f"/messages/{message['id']}").status_code == 200


@pytest.fixture
def http_port() -> Iterator[int]:
    """A port that speaks HTTP, not mail."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_port_that_speaks_something_else(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, http_port: int, protocol: str
) -> None:
    body = account_body(protocol, http_port, dovecot.add_user())
    assert_problem(
        client.post("/v1/accounts", json=body, headers=auth), 502, "mailbox-protocol-error"
    )
