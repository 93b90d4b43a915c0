"""A server that offers plain IMAP4rev1 only (no MOVE, UIDPLUS, PREVIEW, SPECIAL-USE
advertised): the adapter's fallbacks, against a real Dovecot configured that way."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailgate.gateway.context import Gateway
from tests.harness.dovecot import DovecotServer
from tests.harness.servers import MailServer
from tests.helpers import account_body, watch_round
from tests.mail_factory import dated, message_with_attachments, text_message
from tests.test_changes import changes
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
    return Mailbox(client, auth, response.json()["id"], user, plain_dovecot)


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


def test_api_moves_and_copies_are_not_reported_again_without_uidplus(
    gateway: Gateway, plain: Mailbox, plain_dovecot: DovecotServer
) -> None:
    from tests.test_imap_watch import delta

    plain_dovecot.deliver(plain.user, dated(2))
    watch_round(gateway, plain)
    first, second = (m["id"] for m in plain.messages())
    start = changes(plain)["state"]
    archive = plain.folder_id("Archive")
    moved = plain.call("PATCH", f"/messages/{first}", json={"folder_id": archive})
    assert moved.status_code == 200, moved.text
    copied = plain.call("POST", f"/messages/{second}/copy", json={"folder_id": archive})
    assert copied.status_code in (200, 201), copied.text
    by_api = delta(plain, start)
    assert by_api["messages"]["created"] == [copied.json()["id"]]

    watch_round(gateway, plain)
    assert delta(plain, start) == by_api

    plain_dovecot.append(plain.user, text_message("Filed by another client", "x"), "Archive")
    watch_round(gateway, plain)
    assert len(delta(plain, start)["messages"]["created"]) == 2


def test_own_arrivals_are_told_by_uidnext(plain_dovecot: DovecotServer) -> None:
    """Where the server gives no COPYUID, the UIDs of mail the gateway put into a folder are
    the ones UIDNEXT moved by, when it moved by exactly as many; else none are claimed."""
    from mailgate.adapters.imap.own_changes import Arrivals, OwnChange

    user = plain_dovecot.add_user()
    imap = plain_dovecot.imap_client(user)
    arrivals = Arrivals(imap, "Archive")
    uid = plain_dovecot.append(user, text_message("Ours", "x"), "Archive")
    validity = int(imap.folder_status("Archive", [b"UIDVALIDITY"])[b"UIDVALIDITY"])
    assert arrivals.records(1) == [OwnChange("Archive", validity, uid, "created")]

    arrivals = Arrivals(imap, "Archive")
    plain_dovecot.append(user, text_message("Ours", "x"), "Archive")
    plain_dovecot.append(user, text_message("Someone else's, meanwhile", "y"), "Archive")
    assert arrivals.records(1) == []  # two came: which one is ours is unknown
    imap.logout()


@pytest.mark.parametrize("server", ["dovecot", "plain_dovecot"])
def test_all_uids_with_and_without_esearch(request: pytest.FixtureRequest, server: str) -> None:
    from mailgate.adapters.imap.messages import all_uids

    dovecot: DovecotServer = request.getfixturevalue(server)
    user = dovecot.add_user()
    imap = dovecot.imap_client(user)
    assert imap.has_capability("ESEARCH") == (server == "dovecot")
    imap.select_folder("INBOX", readonly=True)
    assert all_uids(imap) == set()  # an empty folder
    dovecot.deliver(user, dated(7))
    imap.select_folder("INBOX")
    imap.delete_messages([2, 3, 6])
    imap.expunge()
    imap.select_folder("INBOX", readonly=True)
    assert all_uids(imap) == {1, 4, 5, 7} == set(imap.search(["ALL"]))
    imap.logout()


@pytest.fixture(params=["plain_dovecot", pytest.param("courier", marks=pytest.mark.interop)])
def without_condstore(
    request: pytest.FixtureRequest, client: TestClient, auth: dict[str, str]
) -> Mailbox:
    """An account on a server without CONDSTORE: the plain Dovecot, and a real Courier."""
    server: MailServer = request.getfixturevalue(request.param)
    user = server.add_user()
    body = account_body("imap", server.imap_port, user)
    response = client.post("/v1/accounts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return Mailbox(client, auth, response.json()["id"], user, server)


def test_flag_changes_are_found_without_condstore(
    gateway: Gateway, without_condstore: Mailbox
) -> None:
    """Without CONDSTORE the watcher compares the flags of the newest messages round by
    round: another client's flag change is one update; the API's own is not reported again."""
    box = without_condstore
    box.server.deliver(box.user, dated(3))
    watch_round(gateway, box)  # the baseline, with the flags of the window
    ids = [m["id"] for m in box.messages()]  # newest first: ids[2] is the oldest
    other = box.server.imap_client(box.user)
    other.select_folder("INBOX")
    oldest = min(other.search(["ALL"]))
    other.add_flags([oldest], [b"\\Flagged"])
    other.logout()
    assert box.call("PATCH", f"/messages/{ids[0]}", json={"seen": True}).status_code == 200
    after_api = changes(box)["state"]
    watch_round(gateway, box)
    found = changes(box, after_api)["messages"]
    assert found == {"created": [], "updated": [ids[2]], "destroyed": []}
    assert box.get(f"/messages/{ids[2]}")["flags"]["flagged"] is True
    watch_round(gateway, box)  # nothing changed since: nothing more
    assert changes(box, after_api)["messages"] == found


def test_a_server_with_no_extension_at_all(
    client: TestClient, auth: dict[str, str], bare_dovecot: DovecotServer
) -> None:
    """RFC 3501 alone (no NAMESPACE, IDLE, LITERAL+, ESEARCH, UIDPLUS, MOVE, CONDSTORE,
    SPECIAL-USE, PREVIEW, UNSELECT advertised): folders by name, search by a synchronizing
    literal, moves by COPY + EXPUNGE, deletes to the trash."""
    imap = bare_dovecot.imap_client(bare_dovecot.add_user())
    assert [c.upper() for c in imap.capabilities()] == [b"IMAP4REV1"]
    imap.logout()
    user = bare_dovecot.add_user()
    bare_dovecot.deliver(user, [*dated(2), message_with_attachments("Grüße aus Köln")])
    created = client.post(
        "/v1/accounts", json=account_body("imap", bare_dovecot.imap_port, user), headers=auth
    )
    assert created.status_code == 201, created.text
    box = Mailbox(client, auth, created.json()["id"], user, bare_dovecot)
    assert {f["role"] for f in box.folders().values()} >= {"inbox", "sent", "trash", "archive"}
    assert box.call("POST", "/folders", json={"name": "Projects"}).json()["path"] == "Projects"
    found = box.messages(subject="Grüße")
    assert [m["subject"] for m in found] == ["Grüße aus Köln"]
    ids = [m["id"] for m in box.messages()]
    assert box.call("PATCH", f"/messages/{ids[0]}", json={"seen": True}).status_code == 200
    moved = box.call("PATCH", f"/messages/{ids[1]}", json={"folder_id": box.folder_id("Archive")})
    assert moved.status_code == 200, moved.text
    assert box.call("DELETE", f"/messages/{ids[2]}").status_code == 204
    assert [m["subject"] for m in box.messages("Trash")] == ["Message 0"]
    assert [m["flags"]["seen"] for m in box.messages()] == [True]
