"""One contract, two protocols: the same API calls on an IMAP and a POP3 account of the same
Dovecot user give the same answers. POP3 keeps folders and flags in Mailgate's store; where
a protocol truly differs, the test says so."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.harness.servers import MailServer
from tests.helpers import account_body, assert_problem
from tests.mail_factory import (
    dated,
    message_with_attachments,
    message_with_inline_image,
    text_message,
)
from tests.test_imap_mail import Mailbox


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture(params=["imap", "pop3"])
def box(
    request: pytest.FixtureRequest,
    client: TestClient,
    auth: dict[str, str],
    mail_server: MailServer,
) -> Mailbox:
    user = mail_server.add_user()
    port = mail_server.imap_port if request.param == "imap" else mail_server.pop3_port
    body = account_body(request.param, port, user)
    response = client.post("/v1/accounts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return Mailbox(client, auth, response.json()["id"], user, mail_server)


ROLES = {"sent": "Sent", "drafts": "Drafts", "trash": "Trash", "junk": "Junk", "archive": "Archive"}


def test_folders(box: Mailbox) -> None:
    folders = box.folders()
    roles = {f["role"]: path for path, f in folders.items() if f["role"]}
    # POP3 folders are Mailgate's own; an IMAP server has the ones it has (Courier: INBOX)
    have = set(ROLES.values()) if box.protocol() == "pop3" else set(box.server.special_folders)
    assert roles == {"inbox": "INBOX"} | {r: p for r, p in ROLES.items() if p in have}
    assert all(f["parent_id"] is None for f in folders.values())  # no INBOX. prefix shown
    parent = box.call("POST", "/folders", json={"name": "Projects"}).json()
    assert parent["path"] == "Projects" and parent["parent_id"] is None
    sep = parent["delimiter"] or "/"
    child = box.call("POST", "/folders", json={"name": "Ünïcode & co", "parent_id": parent["id"]})
    assert child.status_code == 201, child.text
    assert child.json()["path"] == f"Projects{sep}Ünïcode & co"
    assert child.json()["name"] == "Ünïcode & co"
    assert child.json()["parent_id"] == parent["id"]
    renamed = box.call("PATCH", f"/folders/{child.json()['id']}", json={"name": "Done"}).json()
    assert renamed["path"] == f"Projects{sep}Done"
    # the documented difference: IMAP folder ids follow the path, POP3 ones (ours) stay
    assert (renamed["id"] == child.json()["id"]) == (box.protocol() == "pop3")
    moved = box.call("PATCH", f"/folders/{renamed['id']}", json={"parent_id": None}).json()
    assert moved["path"] == "Done" and moved["parent_id"] is None
    assert_problem(box.call("POST", "/folders", json={"name": "Done"}), 409, "already-exists")
    assert_problem(box.call("POST", "/folders", json={"name": "inbox"}), 409, "already-exists")
    assert box.call("DELETE", f"/folders/{moved['id']}").status_code == 204
    assert "Done" not in box.folders()
    assert_problem(
        box.call("DELETE", f"/folders/{box.folder_id('INBOX')}"), 422, "validation-error"
    )
    assert_problem(box.call("DELETE", "/folders/fld_nope"), 404, "not-found")


def test_a_name_the_server_refuses_is_a_clear_problem(box: Mailbox) -> None:
    """Cyrus refuses '%' (a LIST wildcard) in folder names; where a server refuses a name it
    is a 422 with the server's words, and nothing else changes."""
    before = set(box.folders())
    made = box.call("POST", "/folders", json={"name": "50% off"})
    if made.status_code == 201:
        assert made.json()["name"] == "50% off"
        assert set(box.folders()) == before | {"50% off"}
    else:
        problem = assert_problem(made, 422, "validation-error")
        assert "refused" in str(problem["detail"])
        assert set(box.folders()) == before


def test_list_get_raw_attachment(box: Mailbox) -> None:
    payload = bytes(range(256)) * 100
    raw = message_with_attachments("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", {"data.bin": payload})
    box.server.deliver(box.user, [*dated(2), raw])
    items = box.messages()
    assert [m["subject"] for m in items] == ["Grüße", "Message 1", "Message 0"]
    top = items[0]
    assert top["from"] == [{"name": "Zoë Müller", "email": "zoe@example.com"}]
    assert top["has_attachments"] is True and top["preview"] == "See the attachments."
    assert items[1]["preview"] == "Body 1" and items[1]["has_attachments"] is False
    message = box.get(f"/messages/{top['id']}")
    assert message["text"].strip() == "See the attachments." and "<b>" in message["html"]
    assert message["flags"]["seen"] is False
    assert box.call("GET", f"/messages/{top['id']}/raw").content == raw
    attachment = next(a for a in message["attachments"] if a["filename"] == "data.bin")
    got = box.call("GET", f"/messages/{top['id']}/attachments/{attachment['id']}")
    assert got.status_code == 200 and got.content == payload
    assert_problem(box.call("GET", f"/messages/{top['id']}/attachments/99"), 404, "not-found")
    for bad in ["nope", top["id"][:-3], "msg_" + "a" * 26]:
        assert_problem(box.call("GET", f"/messages/{bad}"), 404, "not-found")


def test_flags_keywords_and_filters(box: Mailbox) -> None:
    box.server.deliver(box.user, dated(4))
    box.server.deliver(
        box.user,
        [text_message("Rechnung März", "Betrag fällig", sender="Carol <carol@shop.example>")],
    )
    ids = [m["id"] for m in box.messages()]
    changed = box.call(
        "PATCH",
        f"/messages/{ids[1]}",
        json={"seen": True, "flagged": True, "keywords_add": ["$Work"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["flags"]["seen"] and changed.json()["keywords"] == ["$Work"]
    assert box.get(f"/messages/{ids[1]}")["keywords"] == ["$Work"]

    def subjects(**params: object) -> list[str]:
        return [m["subject"] for m in box.messages(**params)]

    assert subjects(flagged=True) == ["Message 3"]
    assert "Message 3" not in subjects(unread=True) and len(subjects(unread=True)) == 4
    assert subjects(**{"from": "carol@shop"}) == ["Rechnung März"]
    assert subjects(subject="märz") == ["Rechnung März"]
    assert subjects(text="fällig") == ["Rechnung März"]
    assert subjects(to="bob@example.com", subject="Message 2") == ["Message 2"]
    assert_problem(
        box.call("PATCH", f"/messages/{ids[0]}", json={"keywords_add": ["a b"]}),
        422,
        "validation-error",
    )


def test_paging_is_exact_while_mail_arrives(box: Mailbox) -> None:
    box.server.deliver(box.user, dated(7))
    inbox = box.folder_id("INBOX")
    page = box.get("/messages", folder_id=inbox, limit=3)
    seen = [m["subject"] for m in page["items"]]
    while page["next_cursor"]:
        box.server.append(box.user, text_message("Late arrival"))
        page = box.get("/messages", folder_id=inbox, limit=3, cursor=page["next_cursor"])
        seen += [m["subject"] for m in page["items"]]
    assert seen == [f"Message {i}" for i in range(6, -1, -1)]
    assert box.messages(limit=1)[0]["subject"] == "Late arrival"


def test_move_copy_delete_batch(box: Mailbox) -> None:
    box.server.deliver(box.user, dated(5))
    ids = [m["id"] for m in box.messages()]
    archive = box.folder("Archive")
    moved = box.call("PATCH", f"/messages/{ids[0]}", json={"folder_id": archive}).json()
    assert moved["id"] == ids[0] and moved["folder_id"] == archive
    assert [m["id"] for m in box.messages("Archive")] == [ids[0]]
    assert box.get(f"/messages/{ids[0]}")["subject"] == "Message 4"
    assert_problem(
        box.call("PATCH", f"/messages/{ids[0]}", json={"folder_id": "fld_nope"}),
        422,
        "validation-error",
    )
    copy = box.call("POST", f"/messages/{ids[1]}/copy", json={"folder_id": archive})
    assert copy.status_code == 201 and copy.json()["id"] != ids[1]
    assert sorted(m["subject"] for m in box.messages("Archive")) == ["Message 3", "Message 4"]
    assert box.call("DELETE", f"/messages/{ids[2]}").status_code == 204
    assert [m["subject"] for m in box.messages("Trash")] == ["Message 2"]
    assert box.call("DELETE", f"/messages/{ids[2]}").status_code == 204
    assert box.messages("Trash") == []
    assert_problem(box.call("GET", f"/messages/{ids[2]}"), 404, "not-found")
    result = box.call(
        "POST", "/messages/batch", json={"ids": [ids[3], ids[4], "msg_gone"], "seen": True}
    ).json()
    assert [r["status"] for r in result["items"]] == [200, 200, 404]
    assert all(m["flags"]["seen"] for m in box.messages() if m["id"] in ids[3:])
    gone = box.call(
        "POST", "/messages/batch", json={"ids": ids[3:], "delete": True, "permanent": True}
    ).json()
    assert [r["status"] for r in gone["items"]] == [200, 200]
    assert [m["subject"] for m in box.messages()] == [
        "Message 3"
    ]  # ids[1] stayed; its copy is in Archive


def test_has_attachments_agrees_everywhere(box: Mailbox) -> None:
    """The same rule on IMAP and POP3, in the list and in the whole message: an image the
    HTML shows by cid: is no attachment, a PDF beside it is."""
    box.server.deliver(
        box.user,
        [message_with_inline_image("Inline only"), message_with_inline_image("With PDF", pdf=True)],
    )
    listed = {m["subject"]: m for m in box.messages()}
    assert {s: m["has_attachments"] for s, m in listed.items()} == {
        "Inline only": False,
        "With PDF": True,
    }
    for subject, expected in (("Inline only", False), ("With PDF", True)):
        whole = box.get(f"/messages/{listed[subject]['id']}")
        assert whole["has_attachments"] is expected
        inline = [a for a in whole["attachments"] if a["content_type"] == "image/gif"]
        assert len(inline) == 1 and inline[0]["inline"] is True
