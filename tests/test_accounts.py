"""/v1/accounts against the real Dovecot, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme
from fastapi.testclient import TestClient

from mailgate.gateway.context import Gateway
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.net import SilentListener, closed_port
from tests.helpers import assert_problem

PORTS = {
    ("imap", "tls"): "imaps_port",
    ("imap", "starttls"): "imap_port",
    ("imap", "none"): "imap_port",
    ("pop3", "tls"): "pop3s_port",
    ("pop3", "starttls"): "pop3_port",
    ("pop3", "none"): "pop3_port",
}


@pytest.fixture
def trust_test_ca(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The system trust store, as Mailgate sees it, is the test CA (SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.ca_file))


def account_body(
    dovecot: DovecotServer,
    user: MailUser,
    protocol: str = "imap",
    security: str = "none",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "protocol": protocol,
        "host": "localhost" if security != "none" else "127.0.0.1",
        "port": getattr(dovecot, PORTS[(protocol, security)]),
        "security": security,
        "username": user.username,
        "password": user.password,
    }
    body.update(extra)
    return body


def list_ids(client: TestClient, auth: dict[str, str]) -> list[str]:
    response = client.get("/v1/accounts", headers=auth)
    assert response.status_code == 200
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.parametrize("protocol,security", sorted(PORTS))
@pytest.mark.usefixtures("trust_test_ca")
def test_add_account_over_every_protocol_and_security(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
    protocol: str,
    security: str,
) -> None:
    body = account_body(dovecot, mail_user, protocol, security, name="Work")
    response = client.post("/v1/accounts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["id"].startswith("acc_")
    assert account["protocol"] == protocol and account["security"] == security
    assert account["port"] == body["port"] and account["username"] == mail_user.username
    assert account["state"] == "connected" and account["name"] == "Work"
    assert "password" not in account and mail_user.password not in response.text
    assert (account["pop3"] is not None) == (protocol == "pop3")
    assert client.get(f"/v1/accounts/{account['id']}", headers=auth).json() == account
    assert list_ids(client, auth) == [account["id"]]


def test_pop3_policy_is_stored(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    body = account_body(
        dovecot, mail_user, "pop3", pop3={"leave_on_server": False, "delete_after_days": 30}
    )
    account = client.post("/v1/accounts", json=body, headers=auth).json()
    assert account["pop3"] == {
        "leave_on_server": False,
        "delete_after_days": 30,
        "purge_on_server": False,
        "keep_server_deleted": True,
    }
    default = client.post(
        "/v1/accounts", json=account_body(dovecot, mail_user, "pop3"), headers=auth
    )
    assert default.json()["pop3"] == {
        "leave_on_server": True,
        "delete_after_days": None,
        "purge_on_server": False,
        "keep_server_deleted": True,
    }


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_wrong_password_is_refused_with_the_servers_words(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = account_body(dovecot, mail_user, protocol, password="wrong-Pa55word")
    problem = assert_problem(
        client.post("/v1/accounts", json=body, headers=auth), 422, "mailbox-auth-failed"
    )
    assert "Authentication failed" in str(problem["detail"])
    assert list_ids(client, auth) == []
    assert "wrong-Pa55word" not in caplog.text


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_nothing_listening_is_unreachable(
    client: TestClient,
    auth: dict[str, str],
    mail_user: MailUser,
    dovecot: DovecotServer,
    protocol: str,
) -> None:
    body = account_body(dovecot, mail_user, protocol, port=closed_port())
    problem = assert_problem(
        client.post("/v1/accounts", json=body, headers=auth), 502, "mailbox-unreachable"
    )
    assert str(body["port"]) in str(problem["detail"])
    assert list_ids(client, auth) == []


def test_unknown_host_is_unreachable(
    client: TestClient, auth: dict[str, str], mail_user: MailUser, dovecot: DovecotServer
) -> None:
    body = account_body(dovecot, mail_user, host="no-such-host.invalid")
    problem = assert_problem(
        client.post("/v1/accounts", json=body, headers=auth), 502, "mailbox-unreachable"
    )
    assert "no-such-host.invalid" in str(problem["detail"])


@pytest.mark.parametrize("protocol,other_port", [("imap", "pop3_port"), ("pop3", "imap_port")])
def test_a_server_of_another_protocol_is_a_protocol_error(
    client: TestClient,
    auth: dict[str, str],
    mail_user: MailUser,
    dovecot: DovecotServer,
    protocol: str,
    other_port: str,
) -> None:
    """IMAP pointed at a POP3 server, or the other way round, is a 502
    mailbox-protocol-error naming the server. IMAP at POP3 was a 500: imaplib takes "+OK"
    for a continuation and raises error(None), which had no words (found by schemathesis)."""
    port = getattr(dovecot, other_port)
    body = account_body(dovecot, mail_user, protocol, port=port)
    problem = assert_problem(
        client.post("/v1/accounts", json=body, headers=auth), 502, "mailbox-protocol-error"
    )
    assert str(port) in str(problem["detail"])
    assert list_ids(client, auth) == []


@pytest.mark.timeout(20)  # connect_timeout is 2 s in the test settings
@pytest.mark.parametrize(
    "protocol,security", [("imap", "none"), ("imap", "tls"), ("pop3", "none"), ("pop3", "tls")]
)
def test_server_that_never_answers_times_out(
    client: TestClient,
    auth: dict[str, str],
    mail_user: MailUser,
    dovecot: DovecotServer,
    silent_listener: SilentListener,
    protocol: str,
    security: str,
) -> None:
    body = account_body(dovecot, mail_user, protocol, security, port=silent_listener.port)
    assert_problem(client.post("/v1/accounts", json=body, headers=auth), 504, "mailbox-timeout")
    assert silent_listener.accepted >= 1
    assert list_ids(client, auth) == []


@pytest.mark.parametrize(
    "protocol,security",
    [("imap", "tls"), ("imap", "starttls"), ("pop3", "tls"), ("pop3", "starttls")],
)
def test_untrusted_certificate_is_refused_unless_opted_out(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
    protocol: str,
    security: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the test CA is not in the system store
    body = account_body(dovecot, mail_user, protocol, security)
    problem = assert_problem(
        client.post("/v1/accounts", json=body, headers=auth), 502, "mailbox-tls-failed"
    )
    assert "certificate" in str(problem["detail"])
    assert list_ids(client, auth) == []
    opted_out = client.post("/v1/accounts", json={**body, "tls_verify": False}, headers=auth)
    assert opted_out.status_code == 201, opted_out.text
    assert opted_out.json()["tls_verify"] is False


def test_certificate_for_another_name_is_refused(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # trusted CA, wrong name
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("wrong.example").configure_cert(context)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def serve_one() -> None:
            conn, _ = server.accept()
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"* OK ready\r\n")

        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        body = account_body(dovecot, mail_user, "imap", "tls", port=port, host="127.0.0.1")
        problem = assert_problem(
            client.post("/v1/accounts", json=body, headers=auth), 502, "mailbox-tls-failed"
        )
        thread.join(5)
    assert "127.0.0.1" in str(problem["detail"])


BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("unknown protocol", {"protocol": "smtp"}),
    ("port 0", {"port": 0}),
    ("port 70000", {"port": 70000}),
    ("port as text", {"port": "imap"}),
    ("empty username", {"username": ""}),
    ("username with CRLF", {"username": "a\r\nLOGOUT"}),
    ("empty password", {"password": ""}),
    ("host with newline", {"host": "localhost\nevil"}),
    ("host as URL", {"host": "imaps://mail.example.com:993/"}),
    ("host with port", {"host": "mail.example.com:993"}),
    ("host with space", {"host": "mail example.com"}),
    ("unknown security", {"security": "ssl"}),
    ("mass assignment of tenant_id", {"tenant_id": "ten_aaaaaaaaaaaaaaaaaaaaaaaaaa"}),
    ("mass assignment of id", {"id": "acc_aaaaaaaaaaaaaaaaaaaaaaaaaa"}),
    ("unknown field", {"colour": "blue"}),
    ("pop3 policy on imap", {"pop3": {"leave_on_server": False}}),
    ("negative delete_after_days", {"protocol": "pop3", "pop3": {"delete_after_days": -1}}),
]


@pytest.mark.parametrize("case,change", BAD_BODIES, ids=[case for case, _ in BAD_BODIES])
def test_bad_input_is_a_validation_problem_and_writes_nothing(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
    case: str,
    change: dict[str, Any],
) -> None:
    body = {**account_body(dovecot, mail_user), **change}
    problem = assert_problem(
        client.post("/v1/accounts", json=body, headers=auth), 422, "validation-error"
    )
    assert problem["errors"], case
    assert mail_user.password not in str(problem)
    assert list_ids(client, auth) == []


def test_missing_fields_and_wrong_json_types(client: TestClient, auth: dict[str, str]) -> None:
    problem = assert_problem(
        client.post("/v1/accounts", json={}, headers=auth), 422, "validation-error"
    )
    missing = {tuple(e["loc"]) for e in problem["errors"]}  # type: ignore[union-attr]
    assert ("body", "protocol") in missing and ("body", "username") in missing
    no_login = {"protocol": "imap", "host": "mail.example.com", "username": "u"}
    problem = assert_problem(
        client.post("/v1/accounts", json=no_login, headers=auth), 422, "validation-error"
    )
    assert "`password` or `auth`" in str(problem["errors"])
    both = {**no_login, "password": "p", "auth": {"type": "password", "password": "p"}}
    assert_problem(client.post("/v1/accounts", json=both, headers=auth), 422, "validation-error")
    no_host = {"protocol": "imap", "username": "u", "password": "p"}
    problem = assert_problem(
        client.post("/v1/accounts", json=no_host, headers=auth), 422, "validation-error"
    )
    assert "`host` is required" in str(problem["errors"])
    assert_problem(client.post("/v1/accounts", json=["a"], headers=auth), 422, "validation-error")


@pytest.fixture
def account(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> dict[str, Any]:
    response = client.post("/v1/accounts", json=account_body(dovecot, mail_user), headers=auth)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_tenants_are_isolated(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str], account: dict[str, Any]
) -> None:
    url = f"/v1/accounts/{account['id']}"
    assert list_ids(client, other_auth) == []
    assert_problem(client.get(url, headers=other_auth), 404, "not-found")
    assert_problem(client.patch(url, json={"name": "x"}, headers=other_auth), 404, "not-found")
    assert_problem(client.delete(url, headers=other_auth), 404, "not-found")
    assert client.get(url, headers=auth).json()["name"] is None  # untouched


@pytest.mark.parametrize(
    "bad_id", ["nope", "acc_", "acc_" + "z" * 26, "acc_%2e%2e", "ten_" + "a" * 26]
)
def test_malformed_and_unknown_ids_are_not_found(
    client: TestClient, auth: dict[str, str], bad_id: str
) -> None:
    assert_problem(client.get(f"/v1/accounts/{bad_id}", headers=auth), 404, "not-found")


def test_patch_changes_only_given_fields(
    client: TestClient, auth: dict[str, str], account: dict[str, Any]
) -> None:
    url = f"/v1/accounts/{account['id']}"
    renamed = client.patch(url, json={"name": "Personal"}, headers=auth)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Personal"
    assert renamed.json()["host"] == account["host"] and renamed.json()["port"] == account["port"]
    assert renamed.json()["updated_at"] >= account["updated_at"]
    assert client.get(url, headers=auth).json()["name"] == "Personal"
    cleared = client.patch(url, json={"name": None}, headers=auth)
    assert cleared.json()["name"] is None


def test_patch_verifies_new_credentials_before_saving(
    client: TestClient,
    auth: dict[str, str],
    account: dict[str, Any],
    dovecot: DovecotServer,
    mail_user: MailUser,
) -> None:
    url = f"/v1/accounts/{account['id']}"
    assert_problem(
        client.patch(url, json={"password": "wrong"}, headers=auth), 422, "mailbox-auth-failed"
    )
    assert_problem(
        client.patch(url, json={"port": closed_port()}, headers=auth), 502, "mailbox-unreachable"
    )
    assert client.get(url, headers=auth).json()["port"] == dovecot.imap_port
    # the stored password still works: a re-verify with the same settings succeeds
    same = client.patch(url, json={"host": "127.0.0.1"}, headers=auth)
    assert same.status_code == 200, same.text
    new_password = "n3w-secret"
    dovecot.add_user(mail_user.username + "x", new_password)
    moved = client.patch(
        url, json={"username": mail_user.username + "x", "password": new_password}, headers=auth
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["username"] == mail_user.username + "x"
    assert new_password not in moved.text


@pytest.mark.usefixtures("trust_test_ca")
def test_switching_security_is_verified_and_saved(
    client: TestClient, auth: dict[str, str], account: dict[str, Any], dovecot: DovecotServer
) -> None:
    url = f"/v1/accounts/{account['id']}"
    starttls = client.patch(url, json={"security": "starttls", "host": "localhost"}, headers=auth)
    assert starttls.status_code == 200, starttls.text
    assert starttls.json()["port"] == dovecot.imap_port  # not a default port: kept as it was
    refused = client.patch(url, json={"security": "tls"}, headers=auth)  # TLS on a plain port
    assert refused.status_code in (502, 504)
    tls = client.patch(url, json={"security": "tls", "port": dovecot.imaps_port}, headers=auth)
    assert tls.json()["security"] == "tls" and tls.json()["port"] == dovecot.imaps_port
    assert client.get(url, headers=auth).json()["security"] == "tls"


@pytest.mark.parametrize(
    "change",
    [
        {"protocol": "pop3"},
        {"tenant_id": "ten_" + "a" * 26},
        {"host": None},
        {"port": 0},
        {"pop3": {"leave_on_server": False}},
        {"state": "connected"},
    ],
    ids=["protocol", "tenant_id", "null host", "port 0", "pop3 policy on imap", "state"],
)
def test_patch_rejects_bad_changes(
    client: TestClient, auth: dict[str, str], account: dict[str, Any], change: dict[str, Any]
) -> None:
    url = f"/v1/accounts/{account['id']}"
    assert_problem(client.patch(url, json=change, headers=auth), 422, "validation-error")
    assert client.get(url, headers=auth).json() == account


def test_delete_removes_the_account(
    client: TestClient, auth: dict[str, str], account: dict[str, Any]
) -> None:
    url = f"/v1/accounts/{account['id']}"
    response = client.delete(url, headers=auth)
    assert response.status_code == 204 and response.content == b""
    assert_problem(client.get(url, headers=auth), 404, "not-found")
    assert_problem(client.delete(url, headers=auth), 404, "not-found")
    assert list_ids(client, auth) == []


def test_database_holds_neither_password_nor_api_key(
    client: TestClient,
    auth: dict[str, str],
    api_key: str,
    gateway: Gateway,
    account: dict[str, Any],
    mail_user: MailUser,
) -> None:
    with gateway.engine.connect() as connection:
        dump = "".join(
            repr(connection.execute(sa.text(f"SELECT * FROM {table}")).all())
            for table in ("tenant", "api_key", "account")
        )
        stored = connection.execute(
            sa.text("SELECT password_encrypted FROM account WHERE id = :id"), {"id": account["id"]}
        ).scalar_one()
    assert mail_user.password not in dump
    assert api_key not in dump and api_key.removeprefix("mg_") not in dump
    assert gateway.passwords.decrypt(stored) == mail_user.password
