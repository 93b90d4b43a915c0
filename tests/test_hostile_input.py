"""Hostile strings through every parameter that reaches IMAP: nothing is ever sent as a
command of its own, no request answers 500 or hangs, and an independent IMAP client sees
the mailbox exactly as it was (issue 11: search strings went out as atoms, so
`text=x%0D%0AA5 CREATE pwned` created a folder)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.dovecot import DovecotServer
from tests.helpers import assert_problem
from tests.mail_factory import dated
from tests.test_imap_mail import Mailbox, mailbox  # noqa: F401  (fixture)

HOSTILE = [
    "x\r\nA5 CREATE pwned\r\n",
    "x\nA6 CREATE pwned2",
    "{5+}",
    "{5}\r\nhello",
    "~{1}",
    "()",
    ")(",
    "*",
    "%",
    '"',
    '\\"x',
    "\\",
    "a\tb",
    "Grüße ü€😀",
    "[x]",
]


def server_view(dovecot: DovecotServer, box: Mailbox) -> tuple[list[str], dict[int, Any]]:
    """What another IMAP client sees: the folder names and INBOX's UIDs and flags."""
    imap = dovecot.imap_client(box.user)
    try:
        names = sorted(str(name) for _, _, name in imap.list_folders())
        imap.select_folder("INBOX", readonly=True)
        uids = imap.search(["ALL"])
        fetched = imap.fetch(uids, ["FLAGS"]).items()
        flags = {uid: sorted(set(d[b"FLAGS"]) - {b"\\Recent"}) for uid, d in fetched}
        return names, flags
    finally:
        imap.logout()


@pytest.mark.parametrize("param", ["from", "to", "subject", "text"])
def test_search_strings_are_data_never_commands(
    mailbox: Mailbox,  # noqa: F811
    dovecot: DovecotServer,
    param: str,
) -> None:
    dovecot.deliver(mailbox.user, dated(2))
    before = server_view(dovecot, mailbox)
    inbox = mailbox.folder_id("INBOX")
    for value in HOSTILE:
        answer = mailbox.call("GET", "/messages", params={"folder_id": inbox, param: value})
        assert answer.status_code == 200, (value, answer.text)  # (what matches is the server's)
    assert_problem(
        mailbox.call("GET", "/messages", params={param: "a\x00b"}), 422, "validation-error"
    )
    usual = {"from": "alice", "to": "bob", "subject": "Message 1", "text": "Body 1"}[param]
    assert mailbox.call("GET", "/messages", params={param: usual}).json()["items"]
    assert server_view(dovecot, mailbox) == before


def test_folder_names_and_keywords_are_data_never_commands(
    mailbox: Mailbox,  # noqa: F811
    dovecot: DovecotServer,
) -> None:
    dovecot.deliver(mailbox.user, dated(1))
    [message] = mailbox.messages()
    before = server_view(dovecot, mailbox)
    made: list[str] = []
    for value in HOSTILE:
        created = mailbox.call("POST", "/folders", json={"name": value})
        assert created.status_code in (201, 409, 422), (value, created.text)
        if created.status_code == 201:
            assert created.json()["name"] == value.strip()
            made.append(created.json()["id"])
        flagged = mailbox.call(
            "PATCH", f"/messages/{message['id']}", json={"keywords_add": [value]}
        )
        assert flagged.status_code in (200, 422), (value, flagged.text)
    names, flags = server_view(dovecot, mailbox)
    assert not [n for n in names if "pwned" in n]
    assert flags == before[1]  # no keyword the schema refused reached the server
    for id_ in made:
        assert mailbox.call("DELETE", f"/folders/{id_}").status_code == 204
    assert server_view(dovecot, mailbox) == before


@pytest.mark.parametrize(
    "name", ["x[y", "a]b", "p(q", 'say "hi"', "back\\slash", "brace{3}", "ü[ber]"]
)
def test_odd_folder_names_never_break_the_account(
    mailbox: Mailbox,  # noqa: F811
    dovecot: DovecotServer,
    name: str,
) -> None:
    """A folder name with brackets, parentheses, quotes or a backslash, made through the API
    or by another client, is listed like any other; the list, deletes to the trash and the
    watcher go on working (issue 11: "x[y" made every folder list a 500)."""
    dovecot.deliver(mailbox.user, dated(1))
    made = mailbox.call("POST", "/folders", json={"name": name})
    assert made.status_code == 201, made.text
    assert made.json()["name"] == name
    other = dovecot.imap_client(mailbox.user)
    other.create_folder(name + " 2")
    other.logout()
    listed = mailbox.folders()
    assert {name, name + " 2"} <= set(listed)
    [message] = mailbox.messages()
    moved = mailbox.call(
        "PATCH", f"/messages/{message['id']}", json={"folder_id": made.json()["id"]}
    )
    assert moved.status_code == 200, moved.text
    assert [m["subject"] for m in mailbox.messages(name)] == ["Message 0"]
    assert mailbox.call("DELETE", f"/messages/{message['id']}").status_code == 204
    assert [m["subject"] for m in mailbox.messages("Trash")] == ["Message 0"]
    assert mailbox.call("DELETE", f"/folders/{listed[name + ' 2']['id']}").status_code == 204
    assert name + " 2" not in mailbox.folders()
