"""Reading a message on a pooled connection that has its folder selected already: the gateway
sends a NOOP instead of a new SELECT (adapters.imap.messages.fetch_message). What other
clients did in between (new mail, an expunge, a flag, a folder deleted and made again) must
still show on the very next read, on every server of the matrix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailgate.domain.ids import MessageLocation, message_id, message_location
from tests.harness.dovecot import DovecotServer
from tests.harness.proxy import FaultProxy
from tests.harness.servers import MailServer
from tests.helpers import account_body, assert_problem
from tests.mail_factory import text_message


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


class Commands:
    """The IMAP commands the gateway sends through a FaultProxy, by name (``SELECT``,
    ``NOOP``, ``UID FETCH``), in order; everything is forwarded unchanged."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.sent: list[str] = []
        proxy.answer_instead(self._note)

    def _note(self, data: bytes) -> None:
        for line in data.split(b"\r\n"):
            words = line.decode("ascii", "replace").upper().split()
            if len(words) >= 2 and not words[0].isdigit():  # a tagged command, not a literal
                self.sent.append(" ".join(words[1:3]) if words[1] == "UID" else words[1])

    def since(self, mark: int) -> list[str]:
        return self.sent[mark:]


def _account(client: TestClient, auth: dict[str, str], port: int, user: Any) -> str:
    response = client.post("/v1/accounts", json=account_body("imap", port, user), headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _inbox(client: TestClient, auth: dict[str, str], account: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/accounts/{account}/messages", headers=auth)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _sibling(account: str, known: str, uid: int) -> str:
    """The id of the message with ``uid`` in the folder of message ``known`` (the id a
    webhook would carry for it)."""
    location = message_location(known, account)
    assert location is not None
    return message_id(MessageLocation(location.path, location.uidvalidity, uid), account)


def test_reads_without_a_new_select_still_see_what_other_clients_did(
    client: TestClient, auth: dict[str, str], mail_server: MailServer
) -> None:
    user = mail_server.add_user()
    kept_uid = mail_server.append(user, text_message("Kept", "Body of kept"))
    gone_uid = mail_server.append(user, text_message("Gone"))
    account = _account(client, auth, mail_server.imap_port, user)
    base = f"/v1/accounts/{account}/messages"
    ids = {m["subject"]: m["id"] for m in _inbox(client, auth, account)}  # INBOX selected
    kept = client.get(f"{base}/{ids['Kept']}", headers=auth)
    assert kept.status_code == 200, kept.text
    assert kept.json()["flags"]["flagged"] is False

    other = mail_server.imap_client(user)
    other.select_folder("INBOX")
    fresh_uid = mail_server.append(user, text_message("Fresh", "Arrived after the SELECT"))
    other.add_flags([kept_uid], [b"\\Flagged"])
    other.add_flags([gone_uid], [b"\\Deleted"])
    other.expunge()
    other.logout()

    fresh = client.get(f"{base}/{_sibling(account, ids['Kept'], fresh_uid)}", headers=auth)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["subject"] == "Fresh"
    assert "Arrived after the SELECT" in fresh.json()["text"]
    assert_problem(client.get(f"{base}/{ids['Gone']}", headers=auth), 404, "not-found")
    again = client.get(f"{base}/{ids['Kept']}", headers=auth)
    assert again.status_code == 200, again.text
    assert again.json()["flags"]["flagged"] is True
    raw = client.get(f"{base}/{ids['Kept']}/raw", headers=auth)
    assert raw.status_code == 200 and b"Body of kept" in raw.content


def test_a_folder_made_again_under_the_same_name_is_not_read_through_the_old_selection(
    client: TestClient, auth: dict[str, str], mail_server: MailServer
) -> None:
    user = mail_server.add_user()
    account = _account(client, auth, mail_server.imap_port, user)
    made = client.post(f"/v1/accounts/{account}/folders", json={"name": "Reborn"}, headers=auth)
    assert made.status_code == 201, made.text
    folder = made.json()["id"]
    wire_name = mail_server.folder_name("Reborn")
    mail_server.append(user, text_message("Old one"), folder=wire_name)
    listed = client.get(f"/v1/accounts/{account}/messages?folder_id={folder}", headers=auth)
    old = listed.json()["items"][0]["id"]
    assert client.get(f"/v1/accounts/{account}/messages/{old}", headers=auth).status_code == 200

    other = mail_server.imap_client(user)
    other.delete_folder(wire_name)
    other.create_folder(wire_name)
    other.logout()
    new_uid = mail_server.append(user, text_message("New one"), folder=wire_name)

    assert_problem(
        client.get(f"/v1/accounts/{account}/messages/{old}", headers=auth), 404, "not-found"
    )
    listed = client.get(f"/v1/accounts/{account}/messages?folder_id={folder}", headers=auth)
    assert [m["subject"] for m in listed.json()["items"]] == ["New one"]
    new = listed.json()["items"][0]["id"]
    location = message_location(new, account)
    assert location is not None and (location.path, location.uid) == (wire_name, new_uid)
    assert client.get(f"/v1/accounts/{account}/messages/{new}", headers=auth).status_code == 200


def test_a_folder_renamed_by_another_client_is_not_read_through_the_old_selection(
    client: TestClient, auth: dict[str, str], mail_server: MailServer
) -> None:
    """Dovecot ends a session whose folder is renamed; Cyrus reports the messages expunged
    and refuses the FETCH; Courier is always asked with a SELECT."""
    user = mail_server.add_user()
    account = _account(client, auth, mail_server.imap_port, user)
    made = client.post(f"/v1/accounts/{account}/folders", json={"name": "Old"}, headers=auth)
    assert made.status_code == 201, made.text
    mail_server.append(user, text_message("Moved along"), folder=mail_server.folder_name("Old"))
    listed = client.get(
        f"/v1/accounts/{account}/messages?folder_id={made.json()['id']}", headers=auth
    )
    old = listed.json()["items"][0]["id"]
    assert client.get(f"/v1/accounts/{account}/messages/{old}", headers=auth).status_code == 200

    other = mail_server.imap_client(user)
    other.rename_folder(mail_server.folder_name("Old"), mail_server.folder_name("New"))
    other.logout()

    assert_problem(
        client.get(f"/v1/accounts/{account}/messages/{old}", headers=auth), 404, "not-found"
    )
    folders = client.get(f"/v1/accounts/{account}/folders", headers=auth).json()["items"]
    [new] = [f["id"] for f in folders if f["path"] == "New"]
    moved = client.get(f"/v1/accounts/{account}/messages?folder_id={new}", headers=auth).json()
    assert [m["subject"] for m in moved["items"]] == ["Moved along"]


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", dovecot.imap_port)) as running:
        yield running


def test_a_second_read_in_the_same_folder_sends_noop_not_select(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    proxy: FaultProxy,
) -> None:
    user = dovecot.add_user()
    first_uid = dovecot.append(user, text_message("First"))
    second_uid = dovecot.append(user, text_message("Second"))
    commands = Commands(proxy)
    account = _account(client, auth, proxy.address[1], user)
    known = _inbox(client, auth, account)[0]["id"]
    base = f"/v1/accounts/{account}/messages"
    mark = len(commands.sent)
    for uid in (first_uid, second_uid, first_uid):
        answer = client.get(f"{base}/{_sibling(account, known, uid)}", headers=auth)
        assert answer.status_code == 200, answer.text
    assert commands.since(mark) == ["NOOP", "UID FETCH"] * 3

    # anything that may change the selection (here a folder list's STATUS round, which
    # leaves the folder first) makes the next read SELECT again
    assert client.get(f"/v1/accounts/{account}/folders", headers=auth).status_code == 200
    mark = len(commands.sent)
    assert client.get(f"{base}/{known}", headers=auth).status_code == 200
    assert commands.since(mark) == ["SELECT", "UID FETCH"]


def test_an_unsolicited_uidvalidity_makes_the_read_select_again(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    proxy: FaultProxy,
) -> None:
    """RFC 3501 section 7.1: ``OK [UIDVALIDITY n]`` may come untagged at any time; no local
    server sends it mid-session, so the proxy adds one to a NOOP's answer."""
    user = dovecot.add_user()
    dovecot.append(user, text_message("Only"))
    commands = Commands(proxy)
    account = _account(client, auth, proxy.address[1], user)
    known = _inbox(client, auth, account)[0]["id"]
    proxy.rewrite(
        lambda line: (
            b"* OK [UIDVALIDITY 4242] changed\r\n" + line
            if b" OK NOOP" in line.upper() or line.upper().endswith(b"NOOP COMPLETED.\r\n")
            else line
        )
    )
    mark = len(commands.sent)
    answer = client.get(f"/v1/accounts/{account}/messages/{known}", headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["subject"] == "Only"
    assert commands.since(mark) == ["NOOP", "SELECT", "UID FETCH"]
