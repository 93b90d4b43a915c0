"""A keyword another mail client set that holds "[" (RFC 3501 allows it: "[" is no
atom-special): imapclient's lexer takes "[" for the start of a section, as in BODY[TEXT], and
reads on to the next "]", so one such keyword made every list of its folder answer 502. The
API itself refuses these keywords (tests/test_imap_mail.py); here a plain IMAP client sets
one, and the folder lists, the message reads and the watcher reports it, on every server of
the matrix; a watcher idling when the server tells of it takes that as news."""

from __future__ import annotations

import imaplib
import threading

import pytest
from fastapi.testclient import TestClient

from mailgate.adapters.imap.idle import Idling
from mailgate.gateway.context import Gateway
from tests.harness.courier import CourierServer
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.servers import MailServer
from tests.helpers import account_body, watch_round
from tests.mail_factory import text_message
from tests.test_changes import changes
from tests.test_imap_mail import Mailbox

ODD = "x[y"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def set_elsewhere(server: MailServer, user: MailUser, uid: int) -> bool:
    """Add the keywords with imaplib, which sends them as written and parses nothing;
    whether the server took them (Courier-IMAP 5 refuses "[" in a keyword: `NO Error in IMAP
    command received by server.`, so there the case cannot arise)."""
    other = imaplib.IMAP4(server.host, server.imap_port)
    try:
        other.login(user.username, user.password)
        other.select(server.folder_name("INBOX"))
        typ, answer = other.uid("STORE", str(uid), "+FLAGS.SILENT", f"({ODD} $Work)")
        if typ != "OK":
            return False
        typ, answer = other.uid("FETCH", str(uid), "(FLAGS)")
        assert typ == "OK" and ODD.encode() in b" ".join(
            part for part in answer if isinstance(part, bytes)
        ), answer  # the server keeps it as set
        return True
    finally:
        other.logout()


def test_a_keyword_with_an_open_bracket_set_elsewhere_lists_reads_and_is_reported(
    gateway: Gateway, client: TestClient, auth: dict[str, str], mail_server: MailServer
) -> None:
    user = mail_server.add_user()
    odd_uid = mail_server.append(user, text_message("Odd keyword", "Body of the odd one"))
    mail_server.append(user, text_message("Plain"))
    body = account_body("imap", mail_server.imap_port, user)
    made = client.post("/v1/accounts", json=body, headers=auth)
    assert made.status_code == 201, made.text
    box = Mailbox(client, auth, made.json()["id"], user, mail_server)
    watch_round(gateway, box)
    ids = {m["subject"]: m["id"] for m in box.messages()}
    assert box.get(f"/messages/{ids['Odd keyword']}")["keywords"] == []
    since = changes(box)["state"]

    stored = set_elsewhere(mail_server, user, odd_uid)
    assert stored is not isinstance(mail_server, CourierServer)
    if not stored:  # nothing changed: the account reads as before, and nothing is reported
        assert box.get(f"/messages/{ids['Odd keyword']}")["keywords"] == []
        watch_round(gateway, box)
        assert changes(box, since)["messages"]["updated"] == []
        return

    # read again on the connection that has INBOX selected: the NOOP brings the news
    read = box.get(f"/messages/{ids['Odd keyword']}")
    assert sorted(read["keywords"]) == ["$Work", ODD]
    assert "Body of the odd one" in read["text"]
    listed = {m["subject"]: m for m in box.messages()}
    assert sorted(listed["Odd keyword"]["keywords"]) == ["$Work", ODD]
    assert listed["Plain"]["keywords"] == []
    watch_round(gateway, box)
    assert changes(box, since)["messages"]["updated"] == [ids["Odd keyword"]]


def test_an_idle_news_line_imapclient_cannot_lex_is_news(dovecot: DovecotServer) -> None:
    """Dovecot tells an idling session of the keyword with `* FLAGS (... x[y $Work)` and
    `* 1 FETCH (FLAGS (x[y $Work))`, which imapclient's idle_check and idle_done fail to
    lex: the watcher reads IDLE news unparsed (wire.idle_news), hears them as news, and the
    connection stays in step."""
    user = dovecot.add_user()
    uid = dovecot.append(user, text_message("Odd keyword", "x"))
    watcher = dovecot.imap_client(user)
    try:
        watcher.select_folder("INBOX")
        watcher.idle()
        assert set_elsewhere(dovecot, user, uid)
        # as a watcher waits: select, read what came, until news (the two lines may come in
        # two reads; `* FLAGS` alone is no news), then DONE and its tagged OK
        assert Idling(watcher, watcher.socket()).block(10, threading.Event()) is True
        assert watcher.search(["ALL"]) == [uid]
    finally:
        watcher.logout()
