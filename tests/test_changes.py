"""The change feed: what changed through the API (both protocols) and what a POP3 sync
brought, since a state the client holds."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from mailgate.gateway.context import Gateway
from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body, assert_problem, watch_round
from tests.mail_factory import dated
from tests.test_contract import box, database_url  # noqa: F401  (fixtures)
from tests.test_imap_mail import Mailbox
from tests.test_pop3 import add_pop3


def add_imap(client: TestClient, auth: dict[str, str], dovecot: DovecotServer) -> Mailbox:
    user = dovecot.add_user()
    made = client.post(
        "/v1/accounts", json=account_body("imap", dovecot.imap_port, user), headers=auth
    )
    assert made.status_code == 201, made.text
    return Mailbox(client, auth, made.json()["id"], user, dovecot)


def changes(box: Mailbox, since: str | None = None) -> dict[str, Any]:  # noqa: F811
    params = {} if since is None else {"since": since}
    return box.get("/changes", **params)  # type: ignore[no-any-return]


def test_changes_through_the_api(box: Mailbox) -> None:  # noqa: F811
    box.server.deliver(box.user, dated(3))
    ids = [m["id"] for m in box.messages()]
    start = changes(box)["state"]
    assert changes(box, start)["created"] == []

    folder = box.call("POST", "/folders", json={"name": "Later"}).json()
    box.call("PATCH", f"/messages/{ids[0]}", json={"flagged": True})
    box.call("PATCH", f"/messages/{ids[1]}", json={"folder_id": folder["id"]})
    copy = box.call("POST", f"/messages/{ids[0]}/copy", json={"folder_id": folder["id"]}).json()
    box.call("DELETE", f"/messages/{ids[2]}", params={"permanent": "true"})

    delta = changes(box, start)
    assert delta["folders"] == {"created": [folder["id"]], "updated": [], "destroyed": []}
    assert sorted(delta["messages"]["updated"]) == sorted(ids[:2])
    assert delta["messages"]["created"] == [copy["id"]]
    assert delta["messages"]["destroyed"] == [ids[2]]
    assert delta["has_more_changes"] is False
    assert changes(box, start) == delta  # the same answer again, in the same order
    assert changes(box, delta["state"])["updated"] == []

    assert_problem(
        box.call("GET", "/changes", params={"since": "not-a-state"}),
        410,
        "cannot-calculate-changes",
    )
    assert_problem(
        box.call("GET", "/changes", params={"since": "99999999"}), 410, "cannot-calculate-changes"
    )


def test_new_pop3_mail_is_a_change(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    pop3 = add_pop3(client, auth, dovecot, mail_user)
    start = changes(pop3)["state"]
    dovecot.deliver(mail_user, dated(2))
    listed = {m["id"] for m in pop3.messages()}  # a POP3 read syncs first
    assert set(changes(pop3, start)["messages"]["created"]) == listed


def test_mark_seen_is_a_change_like_any_other(
    box: Mailbox,  # noqa: F811
    gateway: Gateway,
) -> None:
    """?mark_seen=true marks the message read as a recorded change: once in the feed (and so
    as a message.updated webhook), never again from a watcher that sees the flag change."""
    box.server.deliver(box.user, dated(1))
    [listed] = box.messages()
    watch_round(gateway, box)  # the watcher's baseline: from here on it reports changes
    start = changes(box)["state"]
    assert box.get(f"/messages/{listed['id']}")["flags"]["seen"] is False  # reading alone
    assert changes(box, start)["updated"] == []

    read = box.get(f"/messages/{listed['id']}", mark_seen="true")
    assert read["flags"]["seen"] is True
    delta = changes(box, start)
    assert delta["messages"]["updated"] == [listed["id"]]
    assert box.messages()[0]["flags"]["seen"] is True

    watch_round(gateway, box)  # the watcher finds the flag on the server: the API's own
    box.get(f"/messages/{listed['id']}", mark_seen="true")  # already read: nothing changes
    assert changes(box, delta["state"])["updated"] == []


def test_each_account_counts_its_own_changes(
    client: TestClient,
    auth: dict[str, str],
    other_auth: dict[str, str],
    dovecot: DovecotServer,
) -> None:
    """Issue 11: the state was one counter for every tenant, so watching it told a tenant how
    busy the others were. Now another tenant's changes leave it where it is, and a state
    of the old kind (a bare number) is unknown: a resync, never a wrong delta."""
    mine = add_imap(client, auth, dovecot)
    theirs = add_imap(client, other_auth, dovecot)
    start = changes(mine)["state"]
    for name in ("One", "Two", "Three"):
        assert theirs.call("POST", "/folders", json={"name": name}).status_code == 201
    assert changes(mine)["state"] == start
    made = mine.call("POST", "/folders", json={"name": "Mine"}).json()
    delta = changes(mine, start)
    assert delta["folders"]["created"] == [made["id"]]
    assert delta["state"] == f"s{int(start.removeprefix('s')) + 1}"
    for old in ("0", start.removeprefix("s")):
        assert_problem(
            mine.call("GET", "/changes", params={"since": old}), 410, "cannot-calculate-changes"
        )
