"""Drafts on every server and both protocols (issue 13): kept in the Drafts folder with the
draft flag, listed like any message, replaced (a new id) and deleted for good."""

from __future__ import annotations

from tests.helpers import assert_problem
from tests.test_contract import box, database_url  # noqa: F401  (fixtures)
from tests.test_imap_mail import Mailbox

ME = "me@example.test"


def drafts(box: Mailbox) -> list[dict[str, object]]:  # noqa: F811
    folder = box.folder_id("Drafts") if "Drafts" in box.folders() else None
    if folder is None:  # a server without one: made on the first draft, as Trash is
        return []
    return list(box.call("GET", "/messages", params={"folder_id": folder}).json()["items"])


def test_a_draft_round_trip(box: Mailbox) -> None:  # noqa: F811
    assert box.call("PATCH", "", json={"send_as": [ME]}).json()["send_as"] == [ME]
    empty = box.call("POST", "/drafts", json={})
    assert empty.status_code == 201, empty.text  # nothing yet is a draft too
    first = box.call(
        "POST",
        "/drafts",
        json={
            "to": [{"name": "Bøb", "email": "bob@example.test"}],
            "bcc": [{"email": "quiet@example.test"}],
            "subject": "Plans (draft)",
            "text": "Thinking…",
        },
    )
    assert first.status_code == 201, first.text
    draft = first.json()
    assert draft["flags"]["draft"] is True and draft["subject"] == "Plans (draft)"
    assert {d["id"] for d in drafts(box)} == {draft["id"], empty.json()["id"]}
    whole = box.get(f"/messages/{draft['id']}")
    assert [a["email"] for a in whole["bcc"]] == ["quiet@example.test"]  # kept until sent
    assert whole["from"][0]["email"] == ME and whole["text"].strip() == "Thinking…"

    replaced = box.call(
        "PUT", f"/drafts/{draft['id']}", json={"subject": "Plans", "text": "Decided."}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] != draft["id"]
    assert box.call("GET", f"/messages/{draft['id']}").status_code == 404
    subjects = sorted(str(d["subject"]) for d in drafts(box))
    assert subjects == ["", "Plans"]

    assert box.call("DELETE", f"/drafts/{replaced.json()['id']}").status_code == 204
    assert [d["id"] for d in drafts(box)] == [empty.json()["id"]]
    assert_problem(box.call("DELETE", f"/drafts/{replaced.json()['id']}"), 404, "not-found")


def test_only_a_draft_is_a_draft(box: Mailbox) -> None:  # noqa: F811
    box.server.deliver(box.user, [b"Subject: real mail\r\n\r\nhello\r\n"])
    [message] = box.messages()
    assert_problem(box.call("DELETE", f"/drafts/{message['id']}"), 404, "not-found")
    assert_problem(box.call("PUT", f"/drafts/{message['id']}", json={}), 404, "not-found")
    assert len(box.messages()) == 1


def test_a_draft_needs_an_address_to_come_from(box: Mailbox) -> None:  # noqa: F811
    body = {"to": [{"email": "bob@example.test"}], "text": "hi"}
    problem = assert_problem(box.call("POST", "/drafts", json=body), 422, "validation-error")
    assert "send_as" in str(problem["detail"])  # its username is no address
    other = {**body, "from": {"email": "ceo@example.test"}}
    box.call("PATCH", "", json={"send_as": [ME]})
    problem = assert_problem(box.call("POST", "/drafts", json=other), 422, "validation-error")
    assert "may not send as ceo@example.test" in str(problem["detail"])
    assert drafts(box) == []


HOSTILE = 'x {5+} ~{1} [y] (z) * % " \\ A5 CREATE pwned Ünï €'
NAME = 'x {5+} ~{1} [y] (z) * % " A5 CREATE Ünï €.txt'  # a file name has no \\ (a directory)


def test_hostile_strings_are_data_in_a_draft(box: Mailbox) -> None:  # noqa: F811
    """Literal markers, brackets, quotes, backslashes and 8-bit text in every string of a
    draft reach the server (IMAP APPEND) or the store as data, and come back as written;
    CR and LF, which would start a header of their own, are refused."""
    box.call("PATCH", "", json={"send_as": [ME]})
    body = {
        "to": [{"name": HOSTILE, "email": "bob@example.test"}],
        "subject": HOSTILE,
        "text": HOSTILE + "\r\n.\r\nA6 LOGOUT\r\n",
        "attachments": [{"filename": NAME, "content_base64": "aGk="}],
        "headers": {"Keywords": HOSTILE},
    }
    made = box.call("POST", "/drafts", json=body)
    assert made.status_code == 201, made.text
    whole = box.get(f"/messages/{made.json()['id']}")
    assert whole["subject"] == HOSTILE and whole["to"][0]["name"] == HOSTILE
    assert whole["text"].startswith(HOSTILE) and "A6 LOGOUT" in whole["text"]
    assert [a["filename"] for a in whole["attachments"]] == [NAME]
    injected = "x\r\nBcc: evil@example.test"
    for broken in (
        {**body, "subject": injected},
        {**body, "headers": {"Keywords": injected}},
        {**body, "attachments": [{"filename": "../../etc/passwd", "content_base64": "aGk="}]},
        {**body, "attachments": [{"filename": "a\\b.txt", "content_base64": "aGk="}]},
    ):
        assert_problem(box.call("POST", "/drafts", json=broken), 422, "validation-error")
    if box.protocol() == "imap":  # another mail client sees no folder the strings named
        with box.server.imap_client(box.user) as client:
            names = [name for _, _, name in client.list_folders()]
        assert not any("pwned" in str(name) for name in names)
