"""Folders, messages and flags over IMAP, through the API, against the real Dovecot.

Each test checks what an API user sees and, where it matters, what another IMAP client
sees on the server.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.servers import MailServer
from tests.helpers import account_body, assert_problem
from tests.mail_factory import dated, message_with_attachments, text_message


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Mail tests run on SQLite; the store tests cover both databases."""
    return sqlite_url


class Mailbox:
    """The API as one client sees one account, plus the user behind it."""

    def __init__(
        self,
        client: TestClient,
        auth: dict[str, str],
        account_id: str,
        user: MailUser,
        server: MailServer,
    ) -> None:
        self.client, self.auth, self.account_id, self.user = client, auth, account_id, user
        self.server = server
        self.base = f"/v1/accounts/{account_id}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(self.base + path, params=params, headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, self.base + path, headers=self.auth, **kwargs)

    def folders(self) -> dict[str, dict[str, Any]]:
        return {f["path"]: f for f in self.get("/folders")["items"]}

    def folder_id(self, path: str) -> str:
        return str(self.folders()[path]["id"])

    def protocol(self) -> str:
        return str(self.client.get(self.base, headers=self.auth).json()["protocol"])

    def folder(self, path: str) -> str:
        """The id of the folder at ``path``, created through the API first where the
        mailbox has none (a plain Courier account has INBOX only)."""
        if path not in self.folders():
            made = self.call("POST", "/folders", json={"name": path})
            assert made.status_code == 201, made.text
        return self.folder_id(path)

    def messages(self, path: str = "INBOX", **params: Any) -> list[dict[str, Any]]:
        return list(self.get("/messages", folder_id=self.folder_id(path), **params)["items"])


@pytest.fixture
def mailbox(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> Mailbox:
    body = account_body("imap", dovecot.imap_port, mail_user)
    response = client.post("/v1/accounts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return Mailbox(client, auth, response.json()["id"], mail_user, dovecot)


def server_flags(
    dovecot: DovecotServer, user: MailUser, folder: str = "INBOX"
) -> dict[int, set[bytes]]:
    imap = dovecot.imap_client(user)
    try:
        imap.select_folder(folder, readonly=True)
        return {
            uid: set(data[b"FLAGS"]) for uid, data in imap.fetch(imap.search(), ["FLAGS"]).items()
        }
    finally:
        imap.logout()


def server_subjects(dovecot: DovecotServer, user: MailUser, folder: str) -> list[str]:
    imap = dovecot.imap_client(user)
    try:
        imap.select_folder(folder, readonly=True)
        fetched = imap.fetch(imap.search(), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        return sorted(
            d[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip().removeprefix("Subject: ")
            for d in fetched.values()
        )
    finally:
        imap.logout()


# -- folders ------------------------------------------------------------------------------


def test_folders_have_roles_and_counts(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(3))
    dovecot.deliver(mailbox.user, dated(2), flags="S")
    folders = mailbox.folders()
    roles = {f["role"]: path for path, f in folders.items() if f["role"]}
    assert roles == {
        "inbox": "INBOX",
        "sent": "Sent",
        "drafts": "Drafts",
        "trash": "Trash",
        "junk": "Junk",
        "archive": "Archive",
    }
    inbox = folders["INBOX"]
    assert (inbox["total"], inbox["unread"]) == (5, 3)
    assert inbox["id"].startswith("fld_") and inbox["parent_id"] is None


def test_folder_create_rename_move_delete(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    created = mailbox.call("POST", "/folders", json={"name": "Projekte Über"})
    assert created.status_code == 201, created.text
    parent = created.json()
    child = mailbox.call(
        "POST", "/folders", json={"name": "2024 50%", "parent_id": parent["id"]}
    ).json()
    assert child["path"] == "Projekte Über/2024 50%" and child["parent_id"] == parent["id"]
    imap = dovecot.imap_client(mailbox.user)
    assert "Projekte Über/2024 50%" in [name for _, _, name in imap.list_folders()]
    renamed = mailbox.call("PATCH", f"/folders/{child['id']}", json={"name": "Done"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["path"] == "Projekte Über/Done"
    moved = mailbox.call(
        "PATCH", f"/folders/{renamed.json()['id']}", json={"parent_id": None}
    ).json()
    assert moved["path"] == "Done" and moved["parent_id"] is None
    assert mailbox.call("DELETE", f"/folders/{moved['id']}").status_code == 204
    names = [name for _, _, name in imap.list_folders()]
    assert "Done" not in names and "Projekte Über" in names
    imap.logout()
    assert_problem(
        mailbox.call("GET", "/messages", params={"folder_id": moved["id"]}), 404, "not-found"
    )


def test_folder_bad_input(mailbox: Mailbox) -> None:
    inbox = mailbox.folder_id("INBOX")
    assert_problem(mailbox.call("POST", "/folders", json={"name": "a/b"}), 422, "validation-error")
    assert_problem(mailbox.call("POST", "/folders", json={"name": "  "}), 422, "validation-error")
    assert_problem(mailbox.call("POST", "/folders", json={"name": "Sent"}), 409, "already-exists")
    assert_problem(
        mailbox.call("POST", "/folders", json={"name": "x", "parent_id": "fld_bm9wZQ"}),
        404,
        "not-found",
    )
    assert_problem(mailbox.call("DELETE", f"/folders/{inbox}"), 422, "validation-error")
    assert_problem(
        mailbox.call("PATCH", f"/folders/{inbox}", json={"name": "Other"}), 422, "validation-error"
    )
    assert_problem(mailbox.call("DELETE", "/folders/garbage"), 404, "not-found")
    assert "a" not in mailbox.folders()


def test_folder_deleted_by_another_client_is_404(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    folder = mailbox.call("POST", "/folders", json={"name": "Gone"}).json()
    imap = dovecot.imap_client(mailbox.user)
    imap.delete_folder("Gone")
    imap.logout()
    assert_problem(
        mailbox.call("GET", "/messages", params={"folder_id": folder["id"]}), 404, "not-found"
    )
    assert "Gone" not in mailbox.folders()


# -- listing --------------------------------------------------------------------------------


def test_list_is_newest_first_with_summaries(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(3))
    dovecot.deliver(mailbox.user, [message_with_attachments("=?utf-8?q?Gr=C3=BC=C3=9Fe?=")])
    items = mailbox.messages()
    assert [m["subject"] for m in items] == ["Grüße", "Message 2", "Message 1", "Message 0"]
    top = items[0]
    assert top["from"] == [{"name": "Zoë Müller", "email": "zoe@example.com"}]
    assert top["has_attachments"] is True and top["preview"].startswith("See the attachments")
    assert top["flags"] == {"seen": False, "flagged": False, "answered": False, "draft": False}
    assert top["folder_id"] == mailbox.folder_id("INBOX") and top["size"] > 0
    assert items[1]["preview"] == "Body 2" and items[1]["has_attachments"] is False
    assert items[1]["date"].startswith("2024-01-03")


def test_cursor_paging_is_exact_while_mail_arrives(
    mailbox: Mailbox, dovecot: DovecotServer
) -> None:
    dovecot.deliver(mailbox.user, dated(10))
    inbox = mailbox.folder_id("INBOX")
    seen: list[str] = []
    page = mailbox.get("/messages", folder_id=inbox, limit=4)
    seen += [m["subject"] for m in page["items"]]
    dovecot.append(mailbox.user, text_message("Newcomer 1"))
    while page["next_cursor"]:
        dovecot.append(mailbox.user, text_message("Newcomer while paging"))
        page = mailbox.get("/messages", folder_id=inbox, limit=4, cursor=page["next_cursor"])
        seen += [m["subject"] for m in page["items"]]
    assert seen == [f"Message {i}" for i in range(9, -1, -1)]
    assert mailbox.messages(limit=1)[0]["subject"] == "Newcomer while paging"


def test_cursor_misuse(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(3))
    inbox = mailbox.folder_id("INBOX")
    cursor = mailbox.get("/messages", folder_id=inbox, limit=1)["next_cursor"]
    other = mailbox.call(
        "GET", "/messages", params={"folder_id": inbox, "cursor": cursor, "unread": True}
    )
    assert_problem(other, 422, "invalid-cursor")
    assert_problem(
        mailbox.call("GET", "/messages", params={"folder_id": inbox, "cursor": "junk"}),
        422,
        "invalid-cursor",
    )
    assert_problem(
        mailbox.call("GET", "/messages", params={"folder_id": inbox, "limit": 0}),
        422,
        "validation-error",
    )
    assert_problem(
        mailbox.call("GET", "/messages", params={"folder_id": inbox, "limit": 201}),
        422,
        "validation-error",
    )


def test_filters(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(5))
    dovecot.deliver(
        mailbox.user,
        [text_message("Rechnung März", "Betrag fällig", sender="Carol <carol@shop.example>")],
    )
    imap = dovecot.imap_client(mailbox.user)
    imap.select_folder("INBOX")
    imap.add_flags([1], [b"\\Seen"])
    imap.add_flags([2], [b"\\Flagged"])
    imap.logout()

    def subjects(**params: Any) -> list[str]:
        return [m["subject"] for m in mailbox.messages(**params)]

    assert "Message 0" not in subjects(unread=True) and len(subjects(unread=True)) == 5
    assert subjects(unread=False) == ["Message 0"]
    assert subjects(flagged=True) == ["Message 1"]
    assert subjects(**{"from": "carol@shop"}) == ["Rechnung März"]
    assert subjects(subject="März") == ["Rechnung März"]
    assert subjects(text="fällig") == ["Rechnung März"]
    assert subjects(to="bob@example.com", subject="Message 3") == ["Message 3"]
    assert subjects(subject="no such thing") == []
    assert_problem(
        mailbox.call("GET", "/messages", params={"since": "not a date"}), 422, "validation-error"
    )


# -- reading --------------------------------------------------------------------------------


def test_get_message_does_not_mark_it_read_unless_asked(
    mailbox: Mailbox, dovecot: DovecotServer
) -> None:
    dovecot.deliver(mailbox.user, [message_with_attachments()])
    summary = mailbox.messages()[0]
    message = mailbox.get(f"/messages/{summary['id']}")
    assert message["text"].strip() == "See the attachments."
    assert "<b>attachments</b>" in message["html"]
    assert [a["filename"] for a in message["attachments"]] == ["Résumé.pdf"]
    assert message["message_id"] and message["id"] == summary["id"]
    assert b"\\Seen" not in server_flags(dovecot, mailbox.user)[1]
    assert mailbox.get(f"/messages/{summary['id']}", mark_seen="true")["id"] == summary["id"]
    assert b"\\Seen" in server_flags(dovecot, mailbox.user)[1]


def test_raw_is_byte_exact_and_attachments_decode(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    payload = bytes(range(256)) * 4000  # ~1 MB, every byte value
    raw = message_with_attachments(attachments={"data.bin": payload, "empty.txt": b""})
    dovecot.deliver(mailbox.user, [raw])
    id_ = mailbox.messages()[0]["id"]
    response = mailbox.call("GET", f"/messages/{id_}/raw")
    assert response.status_code == 200
    assert response.headers["content-type"] == "message/rfc822"
    assert response.content == raw
    attachments = {a["filename"]: a for a in mailbox.get(f"/messages/{id_}")["attachments"]}
    assert attachments["data.bin"]["size"] == len(payload) and attachments["empty.txt"]["size"] == 0
    data = mailbox.call("GET", f"/messages/{id_}/attachments/{attachments['data.bin']['id']}")
    assert data.status_code == 200 and data.content == payload
    assert "data.bin" in data.headers["content-disposition"]
    empty = mailbox.call("GET", f"/messages/{id_}/attachments/{attachments['empty.txt']['id']}")
    assert empty.status_code == 200 and empty.content == b""
    assert_problem(mailbox.call("GET", f"/messages/{id_}/attachments/9"), 404, "not-found")
    assert_problem(
        mailbox.call("GET", f"/messages/{id_}/attachments/1"), 404, "not-found"
    )  # a multipart


def test_an_attachment_comes_with_its_own_type_as_documented(
    mailbox: Mailbox, dovecot: DovecotServer
) -> None:
    """A PDF attachment answers `application/pdf`, and the API says it may (schemathesis:
    the spec promised `application/octet-stream` alone)."""
    dovecot.deliver(mailbox.user, [message_with_attachments()])  # Résumé.pdf
    id_ = mailbox.messages()[0]["id"]
    (attachment,) = mailbox.get(f"/messages/{id_}")["attachments"]
    response = mailbox.call("GET", f"/messages/{id_}/attachments/{attachment['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == attachment["content_type"] == "application/pdf"
    spec = mailbox.client.get("/openapi.json").json()
    path = "/v1/accounts/{account_id}/messages/{message_id}/attachments/{attachment_id}"
    content = spec["paths"][path]["get"]["responses"]["200"]["content"]
    assert set(content) == {"*/*", "application/octet-stream"}
    # a client that accepts only application/octet-stream gets that, the same bytes
    octets = mailbox.client.get(
        f"{mailbox.base}/messages/{id_}/attachments/{attachment['id']}",
        headers={**mailbox.auth, "Accept": "application/octet-stream"},
    )
    assert octets.headers["content-type"] == "application/octet-stream"
    assert octets.content == response.content


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: no content type\r\n\r\nplain body\r\n",
        "Subject: 8-bit Ümlaut\r\nFrom: Jörg <j@example.com>\r\n\r\nbody\r\n".encode(),
        b"Subject: odd charset\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\nbody \xe9\r\n",
        b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nouter body\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\n\r\ninner body\r\n--b--\r\n",
    ],
    ids=["no-content-type", "8bit-headers", "unknown-charset", "nested-rfc822"],
)
def test_unusual_messages_read_cleanly(
    mailbox: Mailbox, dovecot: DovecotServer, raw: bytes
) -> None:
    dovecot.deliver(mailbox.user, [raw])
    summary = mailbox.messages()[0]
    message = mailbox.get(f"/messages/{summary['id']}")
    assert message["subject"] and message["text"] is not None
    assert mailbox.call("GET", f"/messages/{summary['id']}/raw").content == raw
    for attachment in message["attachments"]:
        got = mailbox.call("GET", f"/messages/{summary['id']}/attachments/{attachment['id']}")
        assert got.status_code == 200 and b"inner body" in got.content


def test_bad_message_ids(
    mailbox: Mailbox,
    dovecot: DovecotServer,
    client: TestClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    dovecot.deliver(mailbox.user, dated(1))
    id_ = mailbox.messages()[0]["id"]
    for bad in ["nope", id_[:-4], id_ + "AA", "msg_" + "A" * 40]:
        assert_problem(mailbox.call("GET", f"/messages/{bad}"), 404, "not-found")
        assert_problem(
            mailbox.call("PATCH", f"/messages/{bad}", json={"seen": True}), 404, "not-found"
        )
    assert_problem(
        client.get(f"{mailbox.base}/messages/{id_}", headers=other_auth), 404, "not-found"
    )
    # the same user added twice is two accounts: an id of one never resolves in the other
    twin = client.post(
        "/v1/accounts",
        json=account_body("imap", dovecot.imap_port, mailbox.user),
        headers=auth,
    ).json()
    assert_problem(
        client.get(f"/v1/accounts/{twin['id']}/messages/{id_}", headers=auth), 404, "not-found"
    )


# -- changing -------------------------------------------------------------------------------


def test_flags_and_keywords_reach_the_server(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(1))
    id_ = mailbox.messages()[0]["id"]
    changed = mailbox.call(
        "PATCH",
        f"/messages/{id_}",
        json={"seen": True, "flagged": True, "keywords_add": ["$Work", "todo"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["flags"]["seen"] and changed.json()["flags"]["flagged"]
    assert changed.json()["keywords"] == ["$Work", "todo"]
    assert server_flags(dovecot, mailbox.user)[1] >= {b"\\Seen", b"\\Flagged", b"$Work", b"todo"}
    back = mailbox.call(
        "PATCH", f"/messages/{id_}", json={"flagged": False, "keywords_remove": ["todo"]}
    ).json()
    assert back["flags"]["flagged"] is False and back["keywords"] == ["$Work"]


@pytest.mark.parametrize(
    "keyword", ["has space", "(paren)", "x" * 1000, "\\Seen", "", 'quote"d', "ümlaut"]
)
def test_bad_keywords_are_refused(mailbox: Mailbox, dovecot: DovecotServer, keyword: str) -> None:
    dovecot.deliver(mailbox.user, dated(1))
    id_ = mailbox.messages()[0]["id"]
    assert_problem(
        mailbox.call("PATCH", f"/messages/{id_}", json={"keywords_add": [keyword]}),
        422,
        "validation-error",
    )
    assert server_flags(dovecot, mailbox.user)[1] == set()


def test_a_keyword_with_an_open_bracket_is_refused_and_the_mailbox_stays_readable(
    mailbox: Mailbox, dovecot: DovecotServer
) -> None:
    """RFC 3501 allows "[" in a keyword, but Courier-IMAP refuses one, so the API does on
    every account. (Once set, such a keyword made every FETCH of the message fail and its
    folder list as 502, found by schemathesis; one set by another client now reads fine:
    tests/test_imap_odd_keywords.py.)"""
    dovecot.deliver(mailbox.user, dated(1))
    id_ = mailbox.messages()[0]["id"]
    for field in ("keywords_add", "keywords_remove"):
        body = {field: ["Z0_I[xw8"]}
        problem = assert_problem(
            mailbox.call("PATCH", f"/messages/{id_}", json=body), 422, "validation-error"
        )
        errors = problem["errors"]
        assert isinstance(errors, list) and errors[0]["loc"] == ["body", field, 0]
        batch = mailbox.call("POST", "/messages/batch", json={"ids": [id_], **body})
        assert_problem(batch, 422, "validation-error")
    assert server_flags(dovecot, mailbox.user)[1] == set()
    assert [m["id"] for m in mailbox.messages()] == [id_]


def test_move_keeps_the_id(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(2))
    id_ = mailbox.messages()[0]["id"]
    archive = mailbox.folder_id("Archive")
    moved = mailbox.call("PATCH", f"/messages/{id_}", json={"folder_id": archive, "seen": True})
    assert moved.status_code == 200, moved.text
    assert moved.json()["id"] == id_ and moved.json()["folder_id"] == archive
    assert [m["id"] for m in mailbox.messages("Archive")] == [id_]
    assert [m["subject"] for m in mailbox.messages()] == ["Message 0"]
    assert mailbox.get(f"/messages/{id_}")["subject"] == "Message 1"
    assert server_subjects(dovecot, mailbox.user, "Archive") == ["Message 1"]
    again = mailbox.call(
        "PATCH", f"/messages/{id_}", json={"folder_id": mailbox.folder_id("Junk")}
    ).json()
    assert again["id"] == id_ and mailbox.get(f"/messages/{id_}")["folder_id"] == mailbox.folder_id(
        "Junk"
    )
    same = mailbox.call("PATCH", f"/messages/{id_}", json={"folder_id": mailbox.folder_id("Junk")})
    assert same.status_code == 200 and same.json()["id"] == id_
    assert_problem(
        mailbox.call("PATCH", f"/messages/{id_}", json={"folder_id": "fld_bm9wZQ"}),
        422,
        "validation-error",
    )
    assert server_subjects(dovecot, mailbox.user, "Junk") == ["Message 1"]


def test_copy_makes_a_second_message(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(1))
    id_ = mailbox.messages()[0]["id"]
    copy = mailbox.call(
        "POST", f"/messages/{id_}/copy", json={"folder_id": mailbox.folder_id("Archive")}
    )
    assert copy.status_code == 201, copy.text
    assert copy.json()["id"] != id_ and copy.json()["subject"] == "Message 0"
    assert mailbox.get(f"/messages/{id_}")["folder_id"] == mailbox.folder_id("INBOX")
    assert server_subjects(dovecot, mailbox.user, "Archive") == ["Message 0"]


def test_delete_goes_to_trash_then_for_good(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(2))
    first, second = (m["id"] for m in mailbox.messages())
    assert mailbox.call("DELETE", f"/messages/{first}").status_code == 204
    assert server_subjects(dovecot, mailbox.user, "Trash") == ["Message 1"]
    assert mailbox.get(f"/messages/{first}")["folder_id"] == mailbox.folder_id("Trash")
    assert mailbox.call("DELETE", f"/messages/{first}").status_code == 204  # in the trash: expunged
    assert server_subjects(dovecot, mailbox.user, "Trash") == []
    assert_problem(mailbox.call("GET", f"/messages/{first}"), 404, "not-found")
    assert (
        mailbox.call("DELETE", f"/messages/{second}", params={"permanent": "true"}).status_code
        == 204
    )
    assert server_subjects(dovecot, mailbox.user, "INBOX") == []
    assert server_subjects(dovecot, mailbox.user, "Trash") == []


def test_batch(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(4))
    ids = [m["id"] for m in mailbox.messages()]
    unknown = ids[0][:-6] + "AAAAAA"
    response = mailbox.call(
        "POST", "/messages/batch", json={"ids": [*ids[:3], unknown], "seen": True}
    )
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["items"]] == [200, 200, 200, 404]
    assert [m["flags"]["seen"] for m in mailbox.messages()] == [True, True, True, False]
    moved = mailbox.call(
        "POST", "/messages/batch", json={"ids": ids[:2], "folder_id": mailbox.folder_id("Archive")}
    ).json()
    assert [r["message_id"] for r in moved["items"]] == ids[:2]
    assert sorted(m["id"] for m in mailbox.messages("Archive")) == sorted(ids[:2])
    deleted = mailbox.call(
        "POST", "/messages/batch", json={"ids": ids[2:], "delete": True, "permanent": True}
    ).json()
    assert [r["status"] for r in deleted["items"]] == [200, 200]
    assert mailbox.messages() == []
    for body in [
        {"ids": []},
        {"ids": ids[:1]},
        {"ids": ids[:1], "delete": True, "folder_id": "x"},
        {"ids": [ids[0], ids[0]], "seen": True},
        {"ids": ["x"] * 501, "seen": True},
    ]:
        assert_problem(mailbox.call("POST", "/messages/batch", json=body), 422, "validation-error")


# -- the server is the truth ----------------------------------------------------------------


def test_changes_by_another_client_show_on_the_next_call(
    mailbox: Mailbox, dovecot: DovecotServer
) -> None:
    dovecot.deliver(mailbox.user, dated(3))
    ids = [m["id"] for m in mailbox.messages()]
    imap = dovecot.imap_client(mailbox.user)
    imap.select_folder("INBOX")
    imap.add_flags([3], [b"\\Flagged"])
    assert mailbox.get(f"/messages/{ids[0]}")["flags"]["flagged"] is True
    imap.move([2], "Archive")
    assert_problem(mailbox.call("GET", f"/messages/{ids[1]}"), 404, "not-found")
    imap.add_flags([1], [b"\\Deleted"])
    imap.expunge()
    assert_problem(mailbox.call("GET", f"/messages/{ids[2]}"), 404, "not-found")
    imap.logout()
    dovecot.append(mailbox.user, text_message("Fresh"))
    assert [m["subject"] for m in mailbox.messages()] == ["Fresh", "Message 2"]
    assert mailbox.folders()["Archive"]["total"] == 1


def test_uidvalidity_change_makes_old_ids_404(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    mailbox.call("POST", "/folders", json={"name": "Reborn"})
    dovecot.append(mailbox.user, text_message("Old one"), folder="Reborn")
    old = mailbox.messages("Reborn")[0]["id"]
    imap = dovecot.imap_client(mailbox.user)
    imap.delete_folder("Reborn")
    imap.create_folder("Reborn")
    imap.logout()
    dovecot.append(mailbox.user, text_message("New one"), folder="Reborn")
    assert_problem(mailbox.call("GET", f"/messages/{old}"), 404, "not-found")
    assert [m["subject"] for m in mailbox.messages("Reborn")] == ["New one"]


def test_pooled_connection_dropped_by_a_server_restart_is_replaced(
    mailbox: Mailbox, dovecot: DovecotServer
) -> None:
    dovecot.deliver(mailbox.user, dated(2))
    assert len(mailbox.messages()) == 2  # leaves a pooled, logged-in connection behind
    dovecot.restart()  # every open connection is cut
    assert [m["subject"] for m in mailbox.messages()] == ["Message 1", "Message 0"]


def test_server_down_is_a_clear_problem(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    inbox = mailbox.folder_id("INBOX")
    dovecot.stop()
    try:
        response = mailbox.call("GET", "/messages", params={"folder_id": inbox})
        assert_problem(response, 502, "mailbox-unreachable")
    finally:
        dovecot.start()
    assert mailbox.get("/messages", folder_id=inbox)["items"] == []


def test_list_defaults_to_the_inbox(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(2))
    dovecot.deliver(mailbox.user, dated(1), folder="Archive")
    assert [m["subject"] for m in mailbox.get("/messages")["items"]] == ["Message 1", "Message 0"]


def test_pages_are_exact_across_expunged_gaps(mailbox: Mailbox, dovecot: DovecotServer) -> None:
    dovecot.deliver(mailbox.user, dated(12))
    imap = dovecot.imap_client(mailbox.user)
    imap.select_folder("INBOX")
    imap.add_flags([2, 5, 11, 12], [b"\\Deleted"])
    imap.expunge()
    imap.logout()
    inbox = mailbox.folder_id("INBOX")
    page = mailbox.get("/messages", folder_id=inbox, limit=3)
    seen = [m["subject"] for m in page["items"]]
    while page["next_cursor"]:
        page = mailbox.get("/messages", folder_id=inbox, limit=3, cursor=page["next_cursor"])
        seen += [m["subject"] for m in page["items"]]
    # UIDs 1..12 hold Message 0..11; UIDs 2, 5, 11, 12 are gone
    assert seen == [f"Message {i}" for i in (9, 8, 7, 6, 5, 3, 2, 0)]


def test_arrival_time_is_right_on_a_host_outside_utc(
    mailbox: Mailbox, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from datetime import UTC, datetime

    arrived = 1_700_000_000.0
    dovecot.deliver(mailbox.user, [text_message("Timed")], internal_dates=[arrived])
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        mailbox.client.app.state.gateway.mailboxes.close()  # fresh connections under this TZ
        received = mailbox.messages()[0]["received_at"]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert datetime.fromisoformat(received) == datetime.fromtimestamp(arrived, UTC)
