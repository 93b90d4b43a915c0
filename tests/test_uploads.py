"""Attachment uploads (issue 13): a file sent once as multipart, streamed to disk and kept in
the database, then named by id in sends and drafts. Real Postfix delivering into the real
Dovecot mailbox of the recipient; drafts on Dovecot IMAP and POP3."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from mailgate.api.app import create_app
from mailgate.events.sender import Sender
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from mailgate.store.models import Submission, Upload, utcnow
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer
from tests.harness.postfix import PostfixServer
from tests.helpers import account_body, assert_problem
from tests.test_imap_mail import Mailbox
from tests.test_sending import (  # noqa: F401  (fixtures)
    alice,
    bob,
    database_url,
    delivered,
    person,
    send,
    sending_account,
    submission,
    trust_test_ca,
)

# quotes, a backslash-free path of spaces, 8-bit text, percent signs and a semicolon
HOSTILE_NAME = 'Q3 "final" report; ünïcödé €uro 50% (v2).bin'
ME = "me@example.test"


def upload(box: Mailbox, content: bytes, filename: str, content_type: str | None = None) -> Any:
    part = (filename, content) if content_type is None else (filename, content, content_type)
    return box.client.post(box.base + "/uploads", files={"file": part}, headers=box.auth)


def uploaded(box: Mailbox, content: bytes, filename: str, content_type: str | None = None) -> Any:
    answer = upload(box, content, filename, content_type)
    assert answer.status_code == 201, answer.text
    return answer.json()


def stored_uploads(gateway: Gateway) -> int:
    with Session(gateway.engine) as session:
        return session.exec(select(func.count()).select_from(Upload)).one()


def queued(gateway: Gateway) -> int:
    with Session(gateway.engine) as session:
        return session.exec(select(func.count()).select_from(Submission)).one()


def test_an_upload_is_sent_byte_for_byte_under_its_own_name(
    alice: Mailbox,  # noqa: F811
    bob: Any,  # noqa: F811
    postfix: PostfixServer,
    gateway: Gateway,
) -> None:
    content = os.urandom(3 * 1024 * 1024 + 17)
    made = uploaded(alice, content, HOSTILE_NAME, "application/x-report")
    assert made["id"].startswith("upl_") and made["account_id"] == alice.account_id
    assert made["filename"] == HOSTILE_NAME and made["content_type"] == "application/x-report"
    assert made["size"] == len(content)
    assert made["sha256"] == hashlib.sha256(content).hexdigest()
    assert made["created_at"] < made["expires_at"]
    assert alice.get(f"/uploads/{made['id']}") == made

    body = {
        "to": [{"email": bob.username}],
        "subject": "the report",
        "text": "attached",
        "attachments": [{"upload_id": made["id"]}],
    }
    sent = send(alice, body)
    assert Sender(gateway).send_due() == 1
    assert submission(alice, sent["id"])["status"] == "sent"
    [message] = delivered(postfix, bob)
    [part] = list(message.iter_attachments())
    assert part.get_filename() == HOSTILE_NAME
    assert part.get_content_type() == "application/x-report"
    received = part.get_content()
    assert hashlib.sha256(received).hexdigest() == made["sha256"]

    # usable again until it expires, under another name if asked
    again = {**body, "attachments": [{"upload_id": made["id"], "filename": "copy.bin"}]}
    send(alice, again)
    assert Sender(gateway).send_due() == 1
    second = delivered(postfix, bob, 2)[-1]
    [part] = list(second.iter_attachments())
    assert part.get_filename() == "copy.bin" and part.get_content() == content


@pytest.fixture
def small_limit_client(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[TestClient, Gateway]]:
    gw = Gateway.from_settings(make_settings(tmp_path, sqlite_url, max_upload_bytes=100_000))
    upgrade(gw.engine)
    with TestClient(create_app(gw), raise_server_exceptions=False) as client:
        yield client, gw
    gw.close()


def test_an_upload_over_the_limit_is_refused_and_nothing_is_kept(
    small_limit_client: tuple[TestClient, Gateway], dovecot: DovecotServer
) -> None:
    client, gw = small_limit_client
    auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'small').key}"}
    user = dovecot.add_user()
    body = account_body("imap", dovecot.imap_port, user)
    made = client.post("/v1/accounts", json=body, headers=auth)
    box = Mailbox(client, auth, made.json()["id"], user, dovecot)

    # just over: found while the part streams in
    problem = assert_problem(upload(box, b"x" * 100_001, "big.bin"), 413, "payload-too-large")
    assert "100000" in str(problem["detail"])
    # far over: refused by its Content-Length before a byte is read
    assert_problem(upload(box, b"x" * 5_000_000, "huge.bin"), 413, "payload-too-large")
    assert stored_uploads(gw) == 0
    assert list((gw.settings.data_dir / "uploads").iterdir()) == []  # no temporary file left

    at_limit = uploaded(box, b"y" * 100_000, "fits.bin")
    assert at_limit["size"] == 100_000 and stored_uploads(gw) == 1

    # a message's attachments together stay under the limit too
    box.call("PATCH", "", json={"send_as": [ME]})
    inline = {"filename": "more.txt", "content_base64": "aGVsbG8="}
    body = {"attachments": [{"upload_id": at_limit["id"]}, inline]}
    problem = assert_problem(box.call("POST", "/drafts", json=body), 422, "validation-error")
    assert "MAILGATE_MAX_UPLOAD_BYTES" in str(problem["detail"])


def test_an_upload_of_another_account_or_tenant_is_no_upload(
    alice: Mailbox,  # noqa: F811
    bob: Any,  # noqa: F811
    client: TestClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    oauth_dovecot: DovecotServer,
    postfix: PostfixServer,
    gateway: Gateway,
) -> None:
    carol = sending_account(
        client, auth, oauth_dovecot, postfix, person(oauth_dovecot, postfix, "carol")
    )
    theirs = uploaded(carol, b"carol's secret", "secret.txt", "text/plain")
    assert_problem(alice.call("GET", f"/uploads/{theirs['id']}"), 404, "not-found")
    assert_problem(alice.call("DELETE", f"/uploads/{theirs['id']}"), 404, "not-found")
    stranger = client.get(f"{carol.base}/uploads/{theirs['id']}", headers=other_auth)
    assert_problem(stranger, 404, "not-found")

    body = {
        "to": [{"email": bob.username}],
        "text": "see attached",
        "attachments": [
            {"filename": "ok.txt", "content_base64": "b2s="},
            {"upload_id": theirs["id"]},
        ],
    }
    answer = alice.call("POST", "/send", json=body)
    problem = assert_problem(answer, 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body", "attachments", 1, "upload_id"]  # type: ignore[index]
    assert queued(gateway) == 0
    for made_up in ("upl_aaaaaaaaaaaaaaaaaaaaaaaaaa", "nonsense"):
        body["attachments"] = [{"upload_id": made_up}]
        assert_problem(alice.call("POST", "/send", json=body), 422, "validation-error")
    assert queued(gateway) == 0
    assert carol.get(f"/uploads/{theirs['id']}")["size"] == len(b"carol's secret")


def test_a_deleted_upload_cannot_be_sent(
    alice: Mailbox,  # noqa: F811
    bob: Any,  # noqa: F811
    gateway: Gateway,
) -> None:
    made = uploaded(alice, b"short-lived", "gone.txt")
    assert alice.call("DELETE", f"/uploads/{made['id']}").status_code == 204
    assert_problem(alice.call("GET", f"/uploads/{made['id']}"), 404, "not-found")
    assert_problem(alice.call("DELETE", f"/uploads/{made['id']}"), 404, "not-found")
    body = {"to": [{"email": bob.username}], "attachments": [{"upload_id": made["id"]}]}
    problem = assert_problem(alice.call("POST", "/send", json=body), 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body", "attachments", 0, "upload_id"]  # type: ignore[index]
    assert queued(gateway) == 0 and stored_uploads(gateway) == 0

    uploaded(alice, b"kept with its account", "kept.txt")
    assert stored_uploads(gateway) == 1
    assert alice.call("DELETE", "").status_code == 204
    assert stored_uploads(gateway) == 0  # gone with the account


def test_an_expired_upload_is_gone(
    alice: Mailbox,  # noqa: F811
    bob: Any,  # noqa: F811
    gateway: Gateway,
) -> None:
    old = uploaded(alice, b"yesterday's", "old.txt")
    with Session(gateway.engine) as session:
        row = session.get(Upload, old["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(row)
        session.commit()
    assert_problem(alice.call("GET", f"/uploads/{old['id']}"), 404, "not-found")
    body = {"to": [{"email": bob.username}], "attachments": [{"upload_id": old["id"]}]}
    assert_problem(alice.call("POST", "/send", json=body), 422, "validation-error")
    assert queued(gateway) == 0
    uploaded(alice, b"today's", "new.txt")  # each upload clears the expired ones away
    with Session(gateway.engine) as session:
        assert session.get(Upload, old["id"]) is None
    assert stored_uploads(gateway) == 1


def test_what_is_no_file_upload_is_refused(alice: Mailbox, gateway: Gateway) -> None:  # noqa: F811
    url, auth = alice.base + "/uploads", alice.auth
    post = alice.client.post
    assert_problem(post(url, json={"file": "aGk="}, headers=auth), 415, "unsupported-media-type")
    assert_problem(
        post(url, content=b"hi", headers={**auth, "Content-Type": "multipart/form-data"}),
        400,
        "invalid-multipart",
    )
    broken = {**auth, "Content-Type": "multipart/form-data; boundary=xyz"}
    assert_problem(post(url, content=b"--xyz\r\nno end", headers=broken), 400, "invalid-multipart")

    problem = assert_problem(
        post(url, data={"note": "no file"}, files={"other": ("a.txt", b"a")}, headers=auth),
        422,
        "validation-error",
    )
    assert problem["errors"][0]["loc"] == ["body", "file"]  # type: ignore[index]
    for name in ("../etc/passwd", "dir/name.txt", "a\\b.txt", "line\r\nbreak.txt", "x" * 256):
        problem = assert_problem(upload(alice, b"data", name), 422, "validation-error")
        assert problem["errors"][0]["loc"] == ["body", "file"], name  # type: ignore[index]
    assert_problem(upload(alice, b"data", "ok.txt", "not a type"), 422, "validation-error")
    two = [("file", ("a.txt", b"a")), ("file", ("b.txt", b"b"))]
    assert_problem(post(url, files=two, headers=auth), 422, "validation-error")
    assert stored_uploads(gateway) == 0

    assert_problem(
        alice.client.post(
            "/v1/accounts/acc_aaaaaaaaaaaaaaaaaaaaaaaaaa/uploads",
            files={"file": ("a.txt", b"a")},
            headers=auth,
        ),
        404,
        "not-found",
    )
    plain = uploaded(alice, b"", "empty")  # no type given: octet-stream; empty is a file too
    assert plain["content_type"] == "application/octet-stream" and plain["size"] == 0


@pytest.fixture(params=["imap", "pop3"])
def draft_box(
    request: pytest.FixtureRequest, client: TestClient, auth: dict[str, str], dovecot: DovecotServer
) -> Mailbox:
    user = dovecot.add_user()
    port = dovecot.imap_port if request.param == "imap" else dovecot.pop3_port
    made = client.post("/v1/accounts", json=account_body(request.param, port, user), headers=auth)
    assert made.status_code == 201, made.text
    box = Mailbox(client, auth, made.json()["id"], user, dovecot)
    assert box.call("PATCH", "", json={"send_as": [ME]}).status_code == 200
    return box


def test_a_draft_with_an_upload_round_trips(draft_box: Mailbox) -> None:
    box = draft_box
    content = os.urandom(200_000)
    made = uploaded(box, content, "Präsentation final.pdf", "application/pdf")
    body = {
        "to": [{"email": "bob@example.test"}],
        "subject": "draft with an upload",
        "text": "see attached",
        "attachments": [
            {"upload_id": made["id"]},
            {"filename": "inline.txt", "content_type": "text/plain", "content_base64": "aGk="},
        ],
    }
    draft = box.call("POST", "/drafts", json=body)
    assert draft.status_code == 201, draft.text
    whole = box.get(f"/messages/{draft.json()['id']}")
    names = [(a["filename"], a["content_type"]) for a in whole["attachments"]]
    assert names == [("Präsentation final.pdf", "application/pdf"), ("inline.txt", "text/plain")]
    first = whole["attachments"][0]
    read = box.call("GET", f"/messages/{whole['id']}/attachments/{first['id']}")
    assert read.status_code == 200
    assert hashlib.sha256(read.content).hexdigest() == made["sha256"]

    replaced = box.call("PUT", f"/drafts/{whole['id']}", json=body)  # the upload is still there
    assert replaced.status_code == 200, replaced.text
