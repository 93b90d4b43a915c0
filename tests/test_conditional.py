"""Conditional GETs (issue 14): a message, a folder's list and the folder list carry an
ETag; `If-None-Match` with it answers 304 without a body until what it names changes. On
real Dovecot, IMAP and POP3."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body
from tests.mail_factory import dated
from tests.test_imap_mail import Mailbox


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture(params=["imap", "pop3"])
def box(
    request: pytest.FixtureRequest,
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
) -> Mailbox:
    port = dovecot.imap_port if request.param == "imap" else dovecot.pop3_port
    made = client.post(
        "/v1/accounts", json=account_body(request.param, port, mail_user), headers=auth
    )
    assert made.status_code == 201, made.text
    return Mailbox(client, auth, made.json()["id"], mail_user, dovecot)


def again(box: Mailbox, path: str, etag: str, **params: Any) -> Any:
    return box.client.get(
        box.base + path, params=params, headers={**box.auth, "If-None-Match": etag}
    )


def test_a_message_is_not_sent_again_until_its_flags_change(
    box: Mailbox, dovecot: DovecotServer
) -> None:
    dovecot.deliver(box.user, dated(2))
    [first, *_] = box.messages()
    path = f"/messages/{first['id']}"
    answer = box.call("GET", path)
    assert answer.status_code == 200
    etag = answer.headers["ETag"]
    assert etag.startswith('W/"') and answer.headers["Cache-Control"] == "private, no-cache"
    unchanged = again(box, path, etag)
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == etag
    assert again(box, path, f'"other", {etag}').status_code == 304  # one of a list
    assert again(box, path, "*").status_code == 304
    assert again(box, path, '"something-else"').status_code == 200
    flagged = box.call("PATCH", path, json={"flagged": True})
    assert flagged.status_code == 200, flagged.text
    changed = again(box, path, etag)
    assert changed.status_code == 200 and changed.json()["flags"]["flagged"] is True
    assert changed.headers["ETag"] != etag


def test_the_lists_change_their_etag_when_mail_arrives(
    box: Mailbox, dovecot: DovecotServer
) -> None:
    inbox = box.folder_id("INBOX")
    listed = box.call("GET", "/messages", params={"folder_id": inbox})
    folders = box.call("GET", "/folders")
    for answer in (listed, folders):
        assert answer.status_code == 200 and "ETag" in answer.headers
    assert again(box, "/messages", listed.headers["ETag"], folder_id=inbox).status_code == 304
    assert again(box, "/folders", folders.headers["ETag"]).status_code == 304
    dovecot.deliver(box.user, dated(1))
    newer = again(box, "/messages", listed.headers["ETag"], folder_id=inbox)
    assert newer.status_code == 200
    assert len(newer.json()["items"]) == len(listed.json()["items"]) + 1
    recounted = again(box, "/folders", folders.headers["ETag"])
    assert recounted.status_code == 200 and recounted.headers["ETag"] != folders.headers["ETag"]
