"""A server that offers plain IMAP4rev1 only (no MOVE, UIDPLUS, PREVIEW, SPECIAL-USE
advertised): the adapter's fallbacks, against a real Dovecot configured that way."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.harness.dovecot import DovecotServer
from tests.helpers import account_body
from tests.mail_factory import dated, message_with_attachments
from tests.test_imap_mail import Mailbox, server_subjects


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def plain(client: TestClient, auth: dict[str, str], plain_dovecot: DovecotServer) -> Mailbox:
    user = plain_dovecot.add_user()
    body = account_body("imap", plain_dovecot.imap_port, user)
    response = client.post("/v1/accounts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return Mailbox(client, auth, response.json()["id"], user)


def test_capabilities_really_are_plain(plain_dovecot: DovecotServer) -> None:
    imap = plain_dovecot.imap_client(plain_dovecot.add_user())
    assert not {b"MOVE", b"UIDPLUS", b"PREVIEW"} & set(imap.capabilities())
    imap.logout()


def test_previews_come_from_the_body(plain: Mailbox, plain_dovecot: DovecotServer) -> None:
    plain_dovecot.deliver(plain.user, [*dated(1), message_with_attachments("Report")])
    items = plain.messages()
    assert [m["preview"] for m in items] == ["See the attachments.", "Body 0"]
    assert [m["has_attachments"] for m in items] == [True, False]


def test_move_and_delete_without_move_or_uidplus(
    plain: Mailbox, plain_dovecot: DovecotServer
) -> None:
    plain_dovecot.deliver(plain.user, dated(3))
    first, second, third = (m["id"] for m in plain.messages())
    moved = plain.call(
        "PATCH", f"/messages/{first}", json={"folder_id": plain.folder_id("Archive")}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["folder_id"] == plain.folder_id("Archive")
    assert server_subjects(plain_dovecot, plain.user, "Archive") == ["Message 2"]
    assert server_subjects(plain_dovecot, plain.user, "INBOX") == ["Message 0", "Message 1"]
    assert plain.call("DELETE", f"/messages/{second}").status_code == 204
    assert server_subjects(plain_dovecot, plain.user, "Trash") == ["Message 1"]
    assert (
        plain.call("DELETE", f"/messages/{third}", params={"permanent": "true"}).status_code == 204
    )
    assert server_subjects(plain_dovecot, plain.user, "INBOX") == []
