"""Server answers that break the rules, and that an unexpected answer is never a 500.

Each quirk is reproduced with a real server where one shows it (Cyrus 3.6, Courier-IMAP 5,
Dovecot), else with tests/harness/proxy.py speaking for the server (``rewrite`` changes a
real Dovecot answer line, ``answer_instead`` answers a command, ``inject`` sends unasked).
Each test names its source. Every test asserts what an API user sees, and that the next
request on the same account works (the pool stays healthy).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from mailgate.adapters.imap.adapter import ImapAdapter
from mailgate.domain.errors import MailboxUnreachable
from mailgate.gateway.context import Gateway
from mailgate.store.models import Account
from tests.harness.courier import CourierServer
from tests.harness.cyrus import CyrusServer
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.proxy import FaultProxy
from tests.harness.servers import MailServer
from tests.helpers import account_body, assert_problem
from tests.mail_factory import dated, message_with_attachments, text_message
from tests.test_imap_mail import Mailbox


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def add_account(
    client: TestClient, auth: dict[str, str], server: MailServer, user: MailUser, port: int
) -> Mailbox:
    response = client.post("/v1/accounts", json=account_body("imap", port, user), headers=auth)
    assert response.status_code == 201, response.text
    return Mailbox(client, auth, response.json()["id"], user, server)


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[FaultProxy]:
    with FaultProxy((dovecot.host, dovecot.imap_port)) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def proxied(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
    proxy: FaultProxy,
) -> Mailbox:
    """An account on the real Dovecot, through the proxy."""
    return add_account(client, auth, dovecot, mail_user, proxy.port)


def inbox(box: Mailbox) -> list[dict[str, object]]:
    """The INBOX as listed, without looking up folder ids first (one request)."""
    response = box.call("GET", "/messages")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def adapter_of(gateway: Gateway, box: Mailbox) -> ImapAdapter:
    with Session(gateway.engine) as session:
        account = session.get(Account, box.account_id)
        assert account is not None
        adapter = gateway.mailboxes.adapter(account)
    assert isinstance(adapter, ImapAdapter)
    return adapter


def tagged(command: bytes, reply: Callable[[bytes], bytes]) -> Callable[[bytes], bytes | None]:
    """For ``proxy.answer_instead``: commands starting with ``command`` (after the tag) get
    ``reply(tag)``; the rest goes to the server."""

    def answer(data: bytes) -> bytes | None:
        tag, _, rest = data.partition(b" ")
        return reply(tag) if rest.upper().startswith(command) else None

    return answer


# -- A: summaries from answers that break the rules --------------------------------------------


def test_cyrus_preview_nil_takes_the_preview_from_the_body(
    client: TestClient, auth: dict[str, str], cyrus: CyrusServer, cyrus_user: MailUser
) -> None:
    """Cyrus IMAP 3.6.1 offers PREVIEW (RFC 8970) and answers it NIL for messages it has not
    indexed, such as ones delivered as files (reconstruct): the preview comes from
    BODY.PEEK[TEXT]<0.2048> instead, on every summary path."""
    cyrus.deliver(cyrus_user, [message_with_attachments("Report"), text_message("Plain", "Hi")])
    raw = cyrus.imap_client(cyrus_user)
    raw.select_folder("INBOX", readonly=True)
    assert raw.has_capability("PREVIEW")
    assert {data[b"PREVIEW"] for data in raw.fetch([1, 2], ["PREVIEW"]).values()} == {None}
    raw.logout()

    box = add_account(client, auth, cyrus, cyrus_user, cyrus.imap_port)
    listed = inbox(box)
    assert [(m["subject"], m["preview"]) for m in listed] == [
        ("Plain", "Hi"),
        ("Report", "See the attachments."),
    ]
    assert [m["has_attachments"] for m in listed] == [False, True]
    filtered = box.get("/messages", subject="Report")["items"]  # SEARCH, then UID FETCH
    assert [m["preview"] for m in filtered] == ["See the attachments."]
    patched = box.call("PATCH", f"/messages/{listed[1]['id']}", json={"flagged": True})
    assert patched.status_code == 200, patched.text  # one summary: summary_of
    assert patched.json()["preview"] == "See the attachments."
    assert inbox(box)[1]["flags"]["flagged"] is True


def test_courier_quoted_header_fields_key(
    client: TestClient, auth: dict[str, str], courier: CourierServer, courier_user: MailUser
) -> None:
    """Courier-IMAP 5.0.13 answers BODY.PEEK[HEADER.FIELDS (SUBJECT FROM ...)] as
    ``BODY[HEADER.FIELDS ("SUBJECT" "FROM" ...)]``: the header item is found by its start."""
    courier.deliver(courier_user, [text_message("Hello from Courier", "Body text")])
    raw = courier.imap_client(courier_user)
    raw.select_folder("INBOX", readonly=True)
    [answer] = raw.fetch([1], ["BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"]).values()
    assert b'BODY[HEADER.FIELDS ("SUBJECT" "FROM")]' in answer
    raw.logout()

    box = add_account(client, auth, courier, courier_user, courier.imap_port)
    [message] = inbox(box)
    assert message["subject"] == "Hello from Courier"
    assert message["from"] == [{"name": "Alice", "email": "alice@example.com"}]
    assert message["preview"] == "Body text"
    assert [m["subject"] for m in box.get("/messages", subject="Courier")["items"]] == [
        "Hello from Courier"
    ]


def test_8bit_latin1_header_bytes(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    """Header fields with raw 8-bit bytes that are not UTF-8 (Latin-1), which RFC 5322
    section 2.2 does not allow and RFC 6532 allows only as UTF-8; Dovecot keeps and serves
    them as they came."""
    raw = (
        b"Subject: Caf\xe9 cr\xe8me\r\nFrom: Ren\xe9e <renee@example.org>\r\n"
        b"To: bob@example.org\r\nDate: Wed, 1 May 2024 12:00:00 +0000\r\n\r\nPlain body.\r\n"
    )
    dovecot.deliver(mail_user, [raw])
    box = add_account(client, auth, dovecot, mail_user, dovecot.imap_port)
    [message] = inbox(box)
    assert message["subject"] == "Café crème"
    assert message["from"] == [{"name": "Renée", "email": "renee@example.org"}]
    assert message["preview"] == "Plain body."
    whole = box.get(f"/messages/{message['id']}")
    assert whole["subject"] == "Café crème"


def test_a_fetch_answer_without_uid_is_skipped(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    """A FETCH answer without UID (RFC 3501 section 6.4.8 requires it for UID commands and
    when asked; seen from servers and proxies, nextcloud/mail#13507; chatmail/core skips
    them too): skipped, never attributed by its sequence number. The real Dovecot answer
    for message 1 loses its UID in the proxy."""
    dovecot.deliver(proxied.user, dated(2))
    proxy.rewrite(lambda line: re.sub(rb"^(\* 1 FETCH \()UID \d+ ", rb"\1", line))
    assert [m["subject"] for m in inbox(proxied)] == ["Message 1"]
    assert [m["subject"] for m in proxied.get("/messages", subject="Message")["items"]] == [
        "Message 1"
    ]
    proxy.rewrite(None)
    assert [m["subject"] for m in inbox(proxied)] == ["Message 1", "Message 0"]


UNSOLICITED = (
    b"* 1 FETCH (FLAGS (\\Flagged))\r\n"  # no UID: not attributable to anything
    b"* 7 FETCH (UID 70 FLAGS (\\Deleted))\r\n"  # another message, not asked for
    b"* 9 EXISTS\r\n"
    b"* 1 RECENT\r\n"
)


def test_unsolicited_responses_during_the_fetch(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    """RFC 3501 sections 5.2 and 7.4.1: a server may send FETCH (flag changes) and EXISTS
    while a command runs (ProtonMail Bridge sends FLAGS of other messages mid-FETCH,
    getmail6/getmail6#93; imapclient merges untagged FETCHes into its answer by number,
    mjs/imapclient#334). Injected before Dovecot's tagged OK: they become no summary and
    change none, on the FETCH by number and on the UID FETCH."""
    dovecot.deliver(proxied.user, dated(2))

    def unsolicited(line: bytes) -> bytes:
        return UNSOLICITED + line if re.match(rb"^\w+ OK Fetch completed", line) else line

    proxy.rewrite(unsolicited)
    listed = inbox(proxied)  # FETCH by sequence number
    assert [m["subject"] for m in listed] == ["Message 1", "Message 0"]
    assert not any(m["flags"]["flagged"] for m in listed)
    filtered = proxied.get("/messages", subject="Message")["items"]  # UID FETCH
    assert [m["subject"] for m in filtered] == ["Message 1", "Message 0"]
    assert not any(m["flags"]["flagged"] for m in filtered)
    proxy.rewrite(None)
    assert len(inbox(proxied)) == 2


def test_unsolicited_expunge_during_a_uid_fetch(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    """RFC 3501 section 7.4.1 allows EXPUNGE during UID FETCH (not during FETCH): sequence
    numbers shift under the answers; summaries are keyed by UID, so nothing moves."""
    dovecot.deliver(proxied.user, dated(3))

    def expunge_first(line: bytes) -> bytes:
        return b"* 1 EXPUNGE\r\n" + line if re.match(rb"^\* 2 FETCH \(UID", line) else line

    proxy.rewrite(expunge_first)
    filtered = proxied.get("/messages", subject="Message")["items"]
    assert [m["subject"] for m in filtered] == ["Message 2", "Message 1", "Message 0"]
    proxy.rewrite(None)
    assert len(inbox(proxied)) == 3


def test_nil_in_a_real_bodystructure(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    """NIL where RFC 3501 section 9 wants a string (body-fld-enc, the multipart subtype):
    imapclient's own BODYSTRUCTURE shaping raises TypeError on it. The real Dovecot answer is
    rewritten in the proxy; the list still shows the message and its attachment."""
    dovecot.deliver(proxied.user, [message_with_attachments("Report")])

    def nil_strings(line: bytes) -> bytes:
        if b"BODYSTRUCTURE" not in line:
            return line
        return line.replace(b'"mixed"', b"NIL").replace(b'"base64"', b"NIL")

    proxy.rewrite(nil_strings)
    [message] = inbox(proxied)
    assert (message["subject"], message["has_attachments"]) == ("Report", True)
    assert message["preview"] == "See the attachments."
    proxy.rewrite(None)
    assert inbox(proxied)[0]["has_attachments"] is True


# -- B: an unexpected answer is never a 500 ----------------------------------------------------


def test_an_unreadable_answer_is_a_502_and_the_next_request_works(
    proxied: Mailbox,
    dovecot: DovecotServer,
    proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A FETCH answer that is not IMAP (RFC 3501 section 9: msg-att items come in pairs)
    makes imapclient's parser raise ProtocolError: 502 mailbox-protocol-error naming the
    command and the server, logged with the raw line (never the password), and the
    connection is discarded: the next request gets a fresh one and works."""
    dovecot.deliver(proxied.user, dated(1))
    caplog.set_level(logging.INFO, logger="mailgate.imap")
    proxy.answer_instead(
        tagged(
            b"FETCH",
            lambda tag: (
                b"* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE)\r\n"
                + tag
                + b" OK Fetch completed.\r\n"
            ),
        )
    )
    response = proxied.call("GET", "/messages")
    body = assert_problem(response, 502, "mailbox-protocol-error")
    detail = str(body["detail"])
    assert "FETCH" in detail and f"127.0.0.1:{proxy.port}" in detail
    [record] = [r for r in caplog.records if r.getMessage() == "imap answer not understood"]
    assert any("RFC822.SIZE)" in line for line in vars(record)["wire"])
    assert proxied.user.password not in caplog.text
    assert proxied.user.password not in str(vars(record))

    proxy.answer_instead(None)
    opened = proxy.connections
    assert [m["subject"] for m in inbox(proxied)] == ["Message 0"]
    assert proxy.connections == opened + 1  # the broken one was not given back
    assert len(inbox(proxied)) == 1
    assert proxy.connections == opened + 1  # the new one was


def test_an_unreadable_select_answer_is_a_502_not_a_404(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """``[UIDVALIDITY x]`` (RFC 3501 section 7.1: nz-number): imapclient's SELECT parsing
    raises ValueError; that is the server's fault, not a missing folder. Right after LOGIN:
    the logged lines have the LOGIN command, its arguments redacted."""
    dovecot.deliver(proxied.user, dated(1))
    caplog.set_level(logging.INFO, logger="mailgate.imap")
    proxy.drop_all()  # the connection that added the account: the read logs in anew
    proxy.rewrite(lambda line: re.sub(rb"\[UIDVALIDITY \d+\]", b"[UIDVALIDITY x]", line))
    body = assert_problem(proxied.call("GET", "/messages"), 502, "mailbox-protocol-error")
    assert "SELECT" in str(body["detail"])
    [record] = [r for r in caplog.records if r.getMessage() == "imap answer not understood"]
    wire_lines = vars(record)["wire"]
    assert any(line.endswith("LOGIN ***") for line in wire_lines), wire_lines
    assert any("[UIDVALIDITY x]" in line for line in wire_lines)
    assert proxied.user.password not in caplog.text
    proxy.rewrite(None)
    assert len(inbox(proxied)) == 1


def test_garbage_from_the_server_is_a_502(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    """A response imaplib cannot even frame (not ``*``, ``+`` or a tag: RFC 3501 section
    7): 502, and the next request works."""
    dovecot.deliver(proxied.user, dated(1))
    proxy.answer_instead(tagged(b"FETCH", lambda tag: b"HELLO WORLD\r\n" + tag + b" OK done\r\n"))
    assert_problem(proxied.call("GET", "/messages"), 502, "mailbox-protocol-error")
    proxy.answer_instead(None)
    assert len(inbox(proxied)) == 1


def test_bye_mid_command_is_a_dropped_connection(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    """An untagged BYE instead of the answer (RFC 3501 section 7.1.5: the server closes):
    the pool's one retry on a fresh connection meets it too, so 502 mailbox-unreachable,
    as for any dropped connection; once the server answers again, so does the API."""
    dovecot.deliver(proxied.user, dated(1))
    assert len(inbox(proxied)) == 1  # a connection in the pool
    proxy.answer_instead(
        tagged(b"FETCH", lambda tag: b"* BYE Server shutting down\r\n"), close=True
    )
    assert_problem(proxied.call("GET", "/messages"), 502, "mailbox-unreachable")
    proxy.answer_instead(None)
    assert len(inbox(proxied)) == 1


def test_bye_while_pooled_is_retried_transparently(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy
) -> None:
    """A BYE sent to a connection resting in the pool (RFC 3501 section 7.1.5, e.g. an
    autologout timer, section 5.4), then the close: the next request notices, reconnects
    once and answers as if nothing happened."""
    dovecot.deliver(proxied.user, dated(1))
    assert len(inbox(proxied)) == 1
    opened = proxy.connections
    proxy.inject(b"* BYE Autologout; idle for too long\r\n", close=True)
    assert len(inbox(proxied)) == 1
    assert proxy.connections == opened + 1


def test_bye_while_idling_ends_the_watch(
    gateway: Gateway, proxied: Mailbox, proxy: FaultProxy
) -> None:
    """An untagged BYE during IDLE (RFC 2177; RFC 3501 section 7.1.5): the watcher's wait
    ends with the mailbox error the watcher reconnects on, at once, not at the timeout."""
    watch = adapter_of(gateway, proxied).open_watch()
    timer = threading.Timer(0.5, proxy.inject, [b"* BYE Server shutting down\r\n"], {"close": True})
    timer.start()
    try:
        with pytest.raises(MailboxUnreachable):
            watch.wait(20, threading.Event())
    finally:
        timer.cancel()
        watch.close()


@pytest.mark.parametrize("last_words", [b"* BYE Logging out\r\n", b""], ids=["bye", "nothing"])
def test_a_server_closing_after_logout_without_the_tagged_ok(
    client: TestClient,
    auth: dict[str, str],
    gateway: Gateway,
    dovecot: DovecotServer,
    mail_user: MailUser,
    proxy: FaultProxy,
    last_words: bytes,
) -> None:
    """RFC 3501 section 6.1.3 has the server send BYE, then the tagged OK; some close right
    after BYE, or without a word. Adding the account (login, logout) works, and closing the
    pool does not raise."""
    proxy.answer_instead(tagged(b"LOGOUT", lambda tag: last_words), close=True)
    box = add_account(client, auth, dovecot, mail_user, proxy.port)
    dovecot.deliver(mail_user, dated(1))
    assert len(inbox(box)) == 1
    adapter_of(gateway, box).close()  # LOGOUT of every pooled connection


def test_a_bye_greeting_is_unreachable(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer
) -> None:
    """A server too busy to serve greets with BYE instead of OK (RFC 3501 section 7.1.5):
    the mailbox is unreachable for now, no protocol error. The proxy answers for Dovecot."""
    user = dovecot.add_user()
    with FaultProxy((dovecot.host, dovecot.imap_port)) as proxy:
        proxy.rewrite(
            lambda line: b"* BYE Too many connections\r\n" if line.startswith(b"* OK [") else line
        )
        body = account_body("imap", proxy.port, user)
        problem = assert_problem(
            client.post("/v1/accounts", json=body, headers=auth), 502, "mailbox-unreachable"
        )
        assert "Too many connections" in str(problem["detail"])


@pytest.mark.parametrize("command", [b"UID COPY", b"UID MOVE"])
def test_a_target_folder_gone_before_the_copy_is_the_missing_folder_answer(
    proxied: Mailbox, dovecot: DovecotServer, proxy: FaultProxy, command: bytes
) -> None:
    """Source: a schemathesis run on Dovecot 2.3, where the target folder was deleted after
    Mailgate had listed it: UID COPY answered ``NO [TRYCREATE] Mailbox doesn't exist`` and
    the API said 502 mailbox-protocol-error. The proxy answers for Dovecot here. Now it is
    the answer for a folder that does not exist (422), as before the command."""
    dovecot.deliver(proxied.user, dated(1))
    [message] = inbox(proxied)
    archive = proxied.folder_id("Archive")
    proxy.answer_instead(
        tagged(command, lambda tag: tag + b" NO [TRYCREATE] Mailbox doesn't exist: Archive\r\n")
    )
    if command == b"UID COPY":
        answer = proxied.call(
            "POST", f"/messages/{message['id']}/copy", json={"folder_id": archive}
        )
    else:
        answer = proxied.call("PATCH", f"/messages/{message['id']}", json={"folder_id": archive})
    body = assert_problem(answer, 422, "validation-error")
    assert body["detail"] == "the target folder does not exist"
    proxy.answer_instead(None)
    assert [m["id"] for m in inbox(proxied)] == [message["id"]]  # still there, pool healthy
