"""Sending end to end (issue 13): a real Postfix takes the submission (SASL through Dovecot)
and delivers over LMTP into the recipient's real Dovecot mailbox; the send worker runs as
`mailgate serve` runs it (Sender.send_due), or in a process of its own that is killed."""

from __future__ import annotations

import base64
import email
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from mailgate.api.app import create_app
from mailgate.events.sender import Sender
from mailgate.gateway.context import Gateway
from mailgate.store.models import IdempotencyRecord, Submission, WebhookEvent, utcnow
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.postfix import PostfixServer
from tests.harness.proxy import FaultProxy
from tests.helpers import account_body, assert_problem
from tests.test_imap_mail import Mailbox

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8


@pytest.fixture
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """SQLite; PostgreSQL for the tests of the queue parametrized with ``BOTH_DATABASES``."""
    if request.node.get_closest_marker("postgres"):
        return str(request.getfixturevalue("postgres_schema_url"))
    return sqlite_url


BOTH_DATABASES = pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)


@pytest.fixture(autouse=True)
def trust_test_ca(oauth_dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(oauth_dovecot.ca_file))


def person(dovecot: DovecotServer, postfix: PostfixServer, name: str) -> MailUser:
    """A Dovecot user whose login is its address, and who receives mail through Postfix."""
    user = dovecot.add_user(f"{name}-{secrets.token_hex(3)}@corp.test")
    postfix.add_recipient(user)
    return user


def sending_account(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    postfix: PostfixServer,
    user: MailUser,
    protocol: str = "imap",
    port: int | None = None,
) -> Mailbox:
    mailbox_port = dovecot.imap_port if protocol == "imap" else dovecot.pop3_port
    made = client.post(
        "/v1/accounts", json=account_body(protocol, mailbox_port, user, name="Alice"), headers=auth
    )
    assert made.status_code == 201, made.text
    box = Mailbox(client, auth, made.json()["id"], user, dovecot)
    smtp = {"host": "127.0.0.1", "port": port or postfix.submission_port, "security": "starttls"}
    answer = box.call("PUT", "/smtp", json=smtp)
    assert answer.status_code == 200, answer.text
    return box


@pytest.fixture
def alice(
    client: TestClient, auth: dict[str, str], oauth_dovecot: DovecotServer, postfix: PostfixServer
) -> Mailbox:
    return sending_account(
        client, auth, oauth_dovecot, postfix, person(oauth_dovecot, postfix, "alice")
    )


@pytest.fixture
def bob(oauth_dovecot: DovecotServer, postfix: PostfixServer) -> MailUser:
    return person(oauth_dovecot, postfix, "bob")


def send(box: Mailbox, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    answer = box.client.post(box.base + "/send", json=body, headers={**box.auth, **headers})
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued"
    return answer.json()  # type: ignore[no-any-return]


def submission(box: Mailbox, submission_id: str) -> dict[str, Any]:
    return box.get(f"/submissions/{submission_id}")  # type: ignore[no-any-return]


def delivered(
    postfix: PostfixServer, user: MailUser, count: int = 1
) -> list[email.message.EmailMessage]:
    files = postfix.wait_for_delivery(user, count)
    return [email.message_from_bytes(f.read_bytes(), policy=default) for f in files]  # type: ignore[misc]


def test_a_message_arrives_whole_and_a_copy_lands_in_sent(
    alice: Mailbox,
    bob: MailUser,
    postfix: PostfixServer,
    gateway: Gateway,
    oauth_dovecot: DovecotServer,
) -> None:
    carol = person(oauth_dovecot, postfix, "carol")
    queued = send(
        alice,
        {
            "to": [{"name": "Bøb", "email": bob.username}],
            "bcc": [{"email": carol.username}],
            "subject": "Grüße from Mailgate",
            "text": "Hello Bob,\nthe report is attached.",
            "html": "<p>Hello <b>Bob</b>, the report is attached.</p>",
            "attachments": [
                {
                    "filename": "résumé.pdf",
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(PDF).decode(),
                }
            ],
        },
    )
    assert Sender(gateway).send_due() == 1
    done = submission(alice, queued["id"])
    assert done["status"] == "sent" and done["smtp_code"] == 250, done
    [message] = delivered(postfix, bob)
    assert message["Subject"] == "Grüße from Mailgate"
    assert message["From"].addresses[0].addr_spec == alice.user.username
    assert message["To"].addresses[0].display_name == "Bøb"
    assert message["Bcc"] is None and carol.username not in message.as_string()
    assert message["Message-ID"] == queued["message_id"]
    assert "the report is attached" in message.get_body(("plain",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "résumé.pdf"
    assert attachment.get_content() == PDF
    assert len(delivered(postfix, carol)) == 1  # Bcc receives it
    sent = alice.call("GET", "/messages", params={"folder_id": alice.folder_id("Sent")}).json()
    [copy] = sent["items"]
    assert copy["subject"] == "Grüße from Mailgate" and copy["flags"]["seen"] is True


def test_a_reply_threads_and_marks_the_original_answered(
    client: TestClient,
    auth: dict[str, str],
    alice: Mailbox,
    bob: MailUser,
    postfix: PostfixServer,
    oauth_dovecot: DovecotServer,
    gateway: Gateway,
) -> None:
    first = send(alice, {"to": [{"email": bob.username}], "subject": "Lunch?", "text": "Noon?"})
    Sender(gateway).send_due()
    delivered(postfix, bob)
    bobs = sending_account(client, auth, oauth_dovecot, postfix, bob)
    [original] = bobs.messages()
    reply = send(bobs, {"reply_to_message_id": original["id"], "text": "Yes."})
    Sender(gateway).send_due()
    assert submission(bobs, reply["id"])["status"] == "sent"
    answers = delivered(postfix, alice.user)
    answer = answers[-1]
    assert answer["Subject"] == "Re: Lunch?"
    assert answer["In-Reply-To"] == first["message_id"]
    assert first["message_id"] in answer["References"]
    assert answer["To"].addresses[0].addr_spec == alice.user.username
    assert bobs.get(f"/messages/{original['id']}")["flags"]["answered"] is True


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_reply_and_a_forward_written_as_drafts_mark_their_originals_once_sent(
    client: TestClient,
    auth: dict[str, str],
    alice: Mailbox,
    bob: MailUser,
    postfix: PostfixServer,
    oauth_dovecot: DovecotServer,
    gateway: Gateway,
    protocol: str,
) -> None:
    for subject in ("Lunch?", "Minutes"):
        send(alice, {"to": [{"email": bob.username}], "subject": subject, "text": "x"})
    Sender(gateway).send_due()
    delivered(postfix, bob, 2)
    bobs = sending_account(client, auth, oauth_dovecot, postfix, bob, protocol)
    by_subject = {m["subject"]: m for m in bobs.messages()}
    lunch, minutes = by_subject["Lunch?"], by_subject["Minutes"]
    reply = bobs.call("POST", "/drafts", json={"reply_to_message_id": lunch["id"], "text": "Yes"})
    forward = bobs.call(
        "POST",
        "/drafts",
        json={"forward_message_id": minutes["id"], "to": [{"email": alice.user.username}]},
    )
    assert reply.status_code == 201 and forward.status_code == 201, (reply.text, forward.text)
    assert bobs.get(f"/messages/{lunch['id']}")["flags"]["answered"] is False  # not yet
    for draft in (reply.json(), forward.json()):
        queued = bobs.call("POST", f"/drafts/{draft['id']}/send")
        assert queued.status_code == 202, queued.text
    Sender(gateway).send_due()
    assert bobs.get(f"/messages/{lunch['id']}")["flags"]["answered"] is True
    assert "$Forwarded" in bobs.get(f"/messages/{minutes['id']}")["keywords"]
    answers = delivered(postfix, alice.user, 2)
    assert {a["Subject"] for a in answers} == {"Re: Lunch?", "Fwd: Minutes"}


def test_a_permanent_refusal_fails_with_the_servers_words_and_one_event(
    alice: Mailbox, bob: MailUser, postfix: PostfixServer, gateway: Gateway
) -> None:
    hook = alice.client.post(  # public, so the SSRF guard takes it; never called here
        "/v1/webhooks",
        json={"url": "https://1.1.1.1/hook", "events": ["message.failed"]},
        headers=alice.auth,
    )
    assert hook.status_code == 201, hook.text
    with postfix.recipient_reply(bob.username, "550 5.2.1 Mailbox disabled for this test"):
        queued = send(alice, {"to": [{"email": bob.username}], "text": "hi"})
        Sender(gateway).send_due()
    failed = submission(alice, queued["id"])
    assert failed["status"] == "failed" and failed["smtp_code"] == 550
    assert "Mailbox disabled for this test" in failed["smtp_response"]
    assert Sender(gateway).send_due() == 0  # never tried again
    with Session(gateway.engine) as session:
        events = session.exec(
            select(WebhookEvent).where(WebhookEvent.type == "message.failed")
        ).all()
    assert len(events) == 1 and json.loads(events[0].payload)["data"]["smtp_code"] == 550


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_one_refused_recipient_of_two_is_reported_and_the_other_gets_it(
    alice: Mailbox,
    bob: MailUser,
    postfix: PostfixServer,
    oauth_dovecot: DovecotServer,
    gateway: Gateway,
    pipelining: bool,
) -> None:
    """Postfix offers PIPELINING (MAIL, RCPT and DATA go in one write); a proxy that takes it
    out of the EHLO answer makes the worker send one command at a time, as to a server
    without it (RFC 2920)."""
    carol = person(oauth_dovecot, postfix, "carol")
    with FaultProxy((postfix.host, postfix.smtp_port)) as proxy:
        if not pipelining:
            proxy.rewrite(lambda line: b"" if b"PIPELINING" in line else line)
        through = {"host": "127.0.0.1", "port": proxy.port, "security": "none"}
        assert alice.call("PUT", "/smtp", json=through).status_code == 200
        with postfix.recipient_reply(carol.username, "550 5.1.1 No such user for this test"):
            body = {"to": [{"email": bob.username}, {"email": carol.username}], "text": "two"}
            queued = send(alice, body)
            Sender(gateway).send_due()
    done = submission(alice, queued["id"])
    assert done["status"] == "sent", done
    assert f"{carol.username}: 550" in done["smtp_response"]
    assert "No such user for this test" in done["smtp_response"]
    [message] = delivered(postfix, bob)
    assert message["Message-ID"] == queued["message_id"]


@BOTH_DATABASES
def test_a_message_whose_lease_another_process_took_is_not_sent_here(
    alice: Mailbox, bob: MailUser, postfix: PostfixServer, gateway: Gateway, database: str
) -> None:
    """The worker's lease on the second message runs out mid-round and another process claims
    it (done here when the server says 354): the worker ends that message without the final
    dot, so the server drops it, and leaves it to the other process."""
    with FaultProxy((postfix.host, postfix.smtp_port)) as proxy:
        through = {"host": "127.0.0.1", "port": proxy.port, "security": "none"}
        assert alice.call("PUT", "/smtp", json=through).status_code == 200
        first = send(alice, {"to": [{"email": bob.username}], "text": "first"})
        second = send(alice, {"to": [{"email": bob.username}], "text": "second"})
        elsewhere = utcnow() + timedelta(minutes=5)
        go_aheads = 0

        def claim_the_second_elsewhere(line: bytes) -> bytes:
            nonlocal go_aheads
            if line.startswith(b"354"):
                go_aheads += 1
                if go_aheads == 2:
                    _claim_elsewhere(gateway, second["id"], elsewhere)
            return line

        proxy.rewrite(claim_the_second_elsewhere)
        Sender(gateway).send_due()
    assert submission(alice, first["id"])["status"] == "sent"
    taken = _row(gateway, second["id"])
    assert taken.status == "sending" and taken.final_dot_at is None
    [arrived] = delivered(postfix, bob)
    assert arrived["Message-ID"] == first["message_id"]
    assert_arrived_exactly(postfix, bob, 1)


@BOTH_DATABASES
def test_an_outcome_whose_lease_was_lost_is_recorded_once_by_the_new_holder(
    alice: Mailbox, bob: MailUser, postfix: PostfixServer, gateway: Gateway, database: str
) -> None:
    """Both messages go out, but the first one's lease is taken by another process before the
    outcomes are written: only the second is recorded here (one message.sent); the first is
    the new holder's, which finds it handed over and records it, with its own event."""
    hook = alice.client.post(  # public, so the SSRF guard takes it; never called here
        "/v1/webhooks",
        json={"url": "https://1.1.1.1/hook", "events": ["message.sent"]},
        headers=alice.auth,
    )
    assert hook.status_code == 201, hook.text
    with FaultProxy((postfix.host, postfix.smtp_port)) as proxy:
        through = {"host": "127.0.0.1", "port": proxy.port, "security": "none"}
        assert alice.call("PUT", "/smtp", json=through).status_code == 200
        first = send(alice, {"to": [{"email": bob.username}], "text": "first"})
        second = send(alice, {"to": [{"email": bob.username}], "text": "second"})
        accepted = 0

        def claim_the_first_elsewhere(line: bytes) -> bytes:
            nonlocal accepted
            if line.startswith(b"250 2.0.0 Ok: queued"):
                accepted += 1
                if accepted == 1:
                    _claim_elsewhere(gateway, first["id"], utcnow())  # runs out at once
            return line

        proxy.rewrite(claim_the_first_elsewhere)
        Sender(gateway).send_due()
        assert _row(gateway, first["id"]).status == "sending"
        assert submission(alice, second["id"])["status"] == "sent"
        assert _sent_events(gateway) == [second["id"]]
        Sender(gateway).send_due()  # the new holder, after the lease it took ran out
    done = submission(alice, first["id"])
    assert done["status"] == "sent" and "not sent again" in done["smtp_response"]
    assert sorted(_sent_events(gateway)) == sorted([first["id"], second["id"]])
    assert len(delivered(postfix, bob, 2)) == 2
    assert_arrived_exactly(postfix, bob, 2)


@pytest.mark.postgres
def test_messages_claimed_by_a_killed_worker_are_sent_by_another_within_seconds(
    alice: Mailbox, bob: MailUser, postfix: PostfixServer, gateway: Gateway, tmp_path: Path
) -> None:
    """A worker process claims three queued messages and hangs on the first (Postfix's go-ahead
    for DATA held back by a proxy, so nothing is handed over); it is SIGKILLed there. Another
    worker sends all three within 30 s of the kill, each arriving once (before: the claims
    lasted 300 s)."""
    with FaultProxy((postfix.host, postfix.smtp_port)) as proxy:
        through = {"host": "127.0.0.1", "port": proxy.port, "security": "none"}
        assert alice.call("PUT", "/smtp", json=through).status_code == 200
        queued = [send(alice, {"to": [{"email": bob.username}], "text": f"n{n}"}) for n in range(3)]
        held, let_go = threading.Event(), threading.Event()

        def hold_the_go_ahead(line: bytes) -> bytes:
            if line.startswith(b"354"):
                held.set()
                let_go.wait(60)
            return line

        proxy.rewrite(hold_the_go_ahead)
        worker = _worker_process(gateway, tmp_path)
        try:
            assert held.wait(20), (tmp_path / "worker.log").read_text()
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        proxy.rewrite(None)
        let_go.set()
        assert {_row(gateway, q["id"]).status for q in queued} == {"sending"}  # claimed there
        killed = time.monotonic()
        sender = Sender(gateway)
        try:
            while time.monotonic() - killed < 40:
                sender.send_due()
                if all(submission(alice, q["id"])["status"] == "sent" for q in queued):
                    break
                time.sleep(0.5)
            took = time.monotonic() - killed
        finally:
            sender.close()
    assert [submission(alice, q["id"])["status"] for q in queued] == ["sent"] * 3
    assert took < 30, f"sent {took:.1f} s after the kill"
    assert_arrived_exactly(postfix, bob, 3)
    print(f"3 messages claimed by the killed worker, all sent {took:.1f} s after the kill")


def _claim_elsewhere(gateway: Gateway, submission_id: str, until: datetime) -> None:
    with gateway.engine.begin() as connection:
        connection.execute(
            update(Submission)
            .where(col(Submission.id) == submission_id)
            .values(claimed_until=until, claimed_by="own_elsewhere")
        )


def _sent_events(gateway: Gateway) -> list[str]:
    with Session(gateway.engine) as session:
        events = session.exec(select(WebhookEvent).where(WebhookEvent.type == "message.sent"))
        return [json.loads(event.payload)["data"]["submission_id"] for event in events]


def test_a_kept_session_the_server_ended_is_replaced_without_a_retry(
    alice: Mailbox, bob: MailUser, postfix: PostfixServer, gateway: Gateway
) -> None:
    """The worker keeps its SMTP session for the next round; when the server has closed it
    meanwhile, the next message goes out at once on a new one (not queued for a retry)."""
    sender = Sender(gateway)
    try:
        with FaultProxy((postfix.host, postfix.smtp_port)) as proxy:
            through = {"host": "127.0.0.1", "port": proxy.port, "security": "none"}
            assert alice.call("PUT", "/smtp", json=through).status_code == 200  # connection 1
            first = send(alice, {"to": [{"email": bob.username}], "text": "first"})
            sender.send_due()
            assert proxy.connections == 2
            second = send(alice, {"to": [{"email": bob.username}], "text": "same session"})
            sender.send_due()
            assert proxy.connections == 2  # the session was kept
            proxy.drop_all(rst=False)  # the server ends it
            third = send(alice, {"to": [{"email": bob.username}], "text": "a new session"})
            sender.send_due()
            assert proxy.connections == 3
    finally:
        sender.close()
    for queued in (first, second, third):
        done = submission(alice, queued["id"])
        assert done["status"] == "sent" and done["attempts"] == 1, done
    assert len(delivered(postfix, bob, 3)) == 3


def test_smtp_down_is_retried_and_sent_once_it_is_back(
    alice: Mailbox, bob: MailUser, postfix: PostfixServer, gateway: Gateway
) -> None:
    postfix.stop()
    try:
        queued = send(alice, {"to": [{"email": bob.username}], "text": "while down"})
        Sender(gateway).send_due()
        waiting = submission(alice, queued["id"])
        assert waiting["status"] == "queued" and waiting["attempts"] == 1
    finally:
        postfix.start()
    _make_due(gateway)
    Sender(gateway).send_due()
    assert submission(alice, queued["id"])["status"] == "sent"
    assert len(delivered(postfix, bob)) == 1


def test_the_same_idempotency_key_sends_once(
    alice: Mailbox, bob: MailUser, postfix: PostfixServer, gateway: Gateway
) -> None:
    body = {"to": [{"email": bob.username}], "text": "only once"}
    first = send(alice, body, **{"Idempotency-Key": "order-42"})
    again = send(alice, body, **{"Idempotency-Key": "order-42"})
    assert again["id"] == first["id"]
    # another body under the key: refused at the HTTP edge within its 24 hours
    changed = alice.client.post(
        alice.base + "/send",
        json={**body, "text": "a retry"},
        headers={**alice.auth, "Idempotency-Key": "order-42"},
    )
    assert_problem(changed, 409, "idempotency-conflict")
    # once the edge has forgotten the key, the submission still holds it, whatever the body
    with gateway.engine.begin() as connection:
        connection.execute(delete(IdempotencyRecord))
    later = send(alice, {**body, "text": "a retry"}, **{"Idempotency-Key": "order-42"})
    assert later["id"] == first["id"]
    Sender(gateway).send_due()
    other = send(alice, body, **{"Idempotency-Key": "order-43"})
    Sender(gateway).send_due()
    assert other["id"] != first["id"]
    messages = delivered(postfix, bob, 2)
    assert_arrived_exactly(postfix, bob, 2)
    assert [m.get_body(("plain",)).get_content().strip() for m in messages] == ["only once"] * 2


def test_a_gateway_killed_after_the_final_dot_never_sends_again(
    alice: Mailbox,
    bob: MailUser,
    postfix: PostfixServer,
    gateway: Gateway,
    tmp_path: Path,
) -> None:
    """The worker runs in a process of its own, through a proxy that holds back Postfix's
    answer to the final dot: Postfix has the message, the worker has not heard so. Killed
    there, and a new worker started: exactly one message arrives."""
    # in the clear (Postfix' smtp_port takes AUTH without TLS), so the proxy reads the lines
    with FaultProxy((postfix.host, postfix.smtp_port)) as proxy:
        through = {"host": "127.0.0.1", "port": proxy.port, "security": "none"}
        moved = alice.call("PUT", "/smtp", json=through)
        assert moved.status_code == 200, moved.text
        queued = send(alice, {"to": [{"email": bob.username}], "text": "exactly once"})

        def hold_the_answer(line: bytes) -> bytes:
            if line.startswith(b"250 2.0.0 Ok: queued"):
                time.sleep(60)
            return line

        proxy.rewrite(hold_the_answer)
        worker = _worker_process(gateway, tmp_path)
        try:
            delivered(postfix, bob)  # Postfix took it
            _wait_for(lambda: _row(gateway, queued["id"]).final_dot_at is not None)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        proxy.rewrite(None)
    with gateway.engine.begin() as connection:  # its lease runs out
        connection.execute(update(Submission).values(claimed_until=utcnow()))
    Sender(gateway).send_due()
    done = submission(alice, queued["id"])
    assert done["status"] == "sent" and "not sent again" in done["smtp_response"]
    assert_arrived_exactly(postfix, bob, 1)
    # what follows a send happens after the restart: the copy in Sent, once
    assert _sent_copies(alice, queued["message_id"]) == 1


def test_a_gateway_killed_after_saving_the_sent_copy_saves_no_second_one(
    client: TestClient,
    auth: dict[str, str],
    bob: MailUser,
    postfix: PostfixServer,
    oauth_dovecot: DovecotServer,
    gateway: Gateway,
    tmp_path: Path,
) -> None:
    """Killed after the server took the message and the copy went to Sent, before either
    was recorded (the IMAP server's answer to APPEND held back by a proxy): the restarted
    worker finds the copy by its Message-ID, sends nothing and saves no second copy."""
    user = person(oauth_dovecot, postfix, "alice")
    with FaultProxy((oauth_dovecot.host, oauth_dovecot.imap_port)) as proxy:
        made = client.post(
            "/v1/accounts", json=account_body("imap", proxy.port, user), headers=auth
        )
        assert made.status_code == 201, made.text
        alice = Mailbox(client, auth, made.json()["id"], user, oauth_dovecot)
        smtp = {"host": "127.0.0.1", "port": postfix.submission_port, "security": "starttls"}
        assert alice.call("PUT", "/smtp", json=smtp).status_code == 200
        queued = send(alice, {"to": [{"email": bob.username}], "text": "one copy"})

        def hold_the_append_answer(line: bytes) -> bytes:
            if b" OK [APPENDUID " in line:
                time.sleep(60)
            return line

        proxy.rewrite(hold_the_append_answer)
        worker = _worker_process(gateway, tmp_path)
        try:
            delivered(postfix, bob)
            _wait_for(lambda: _copies_on_server(oauth_dovecot, user, queued["message_id"]) == 1)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        proxy.rewrite(None)
        assert _row(gateway, queued["id"]).status == "sending"  # nothing recorded
        with gateway.engine.begin() as connection:  # its lease runs out
            connection.execute(update(Submission).values(claimed_until=utcnow()))
        Sender(gateway).send_due()
        done = submission(alice, queued["id"])
        assert done["status"] == "sent", done
        assert "its copy was in Sent already" in done["smtp_response"]
        assert _sent_copies(alice, queued["message_id"]) == 1
    assert _copies_on_server(oauth_dovecot, user, queued["message_id"]) == 1
    assert_arrived_exactly(postfix, bob, 1)


def _sent_copies(box: Mailbox, message_id: str) -> int:
    """Copies in the account's Sent folder (read through Mailgate) with this Message-ID."""
    listed = box.get("/messages", folder_id=box.folder_id("Sent"), limit=100)["items"]
    ids = [box.get(f"/messages/{item['id']}")["message_id"] for item in listed]
    return sum(1 for found in ids if f"<{found}>" == message_id or found == message_id)


def _copies_on_server(server: DovecotServer, user: MailUser, message_id: str) -> int:
    client = server.imap_client(user)
    try:
        if not client.folder_exists("Sent"):
            return 0
        client.select_folder("Sent", readonly=True)
        return len(client.search(["HEADER", "Message-ID", message_id]))
    finally:
        client.logout()


def test_bad_input_queues_nothing(alice: Mailbox, gateway: Gateway, bob: MailUser) -> None:
    cases: list[dict[str, Any]] = [
        {"to": [], "text": "no one"},
        {"to": [{"email": "not an address"}], "text": "x"},
        {"to": [{"email": bob.username}], "subject": "a\r\nBcc: evil@corp.test", "text": "x"},
        {"to": [{"email": bob.username}], "headers": {"Bcc": "evil@corp.test"}, "text": "x"},
        {"to": [{"email": f"r{i}@corp.test"} for i in range(1000)], "text": "x"},
        {"to": [{"email": bob.username}], "from": {"email": "ceo@corp.test"}, "text": "x"},
        {"to": [{"email": bob.username}], "reply_to_message_id": "msg_nope", "text": "x"},
    ]
    for body in cases:
        answer = alice.call("POST", "/send", json=body)
        assert_problem(answer, 422, "validation-error")
    assert alice.get("/submissions")["items"] == []


def test_smtp_settings_are_verified_with_the_mailbox_problem_types(
    client: TestClient, auth: dict[str, str], oauth_dovecot: DovecotServer, postfix: PostfixServer
) -> None:
    user = person(oauth_dovecot, postfix, "dave")
    made = client.post(
        "/v1/accounts", json=account_body("imap", oauth_dovecot.imap_port, user), headers=auth
    ).json()
    base = f"/v1/accounts/{made['id']}/smtp"
    wrong = {"host": "127.0.0.1", "port": postfix.submission_port, "password": "wrong"}
    problem = assert_problem(client.put(base, json=wrong, headers=auth), 422, "mailbox-auth-failed")
    assert "535" in str(problem["detail"])
    refused = {"host": "127.0.0.1", "port": 1, "security": "none"}
    assert_problem(client.put(base, json=refused, headers=auth), 502, "mailbox-unreachable")
    assert_problem(client.get(base, headers=auth), 404, "not-found")
    tls = {"host": "127.0.0.1", "port": postfix.smtps_port, "security": "tls"}
    answer = client.put(base, json=tls, headers=auth)
    assert answer.status_code == 200, answer.text
    assert (
        answer.json()["port"] == postfix.smtps_port and answer.json()["has_own_password"] is False
    )


def test_pop3_accounts_send_and_keep_the_copy_in_the_store(
    client: TestClient,
    auth: dict[str, str],
    oauth_dovecot: DovecotServer,
    postfix: PostfixServer,
    bob: MailUser,
    gateway: Gateway,
) -> None:
    pop3 = sending_account(
        client, auth, oauth_dovecot, postfix, person(oauth_dovecot, postfix, "erin"), "pop3"
    )
    queued = send(pop3, {"to": [{"email": bob.username}], "subject": "From POP3", "text": "x"})
    Sender(gateway).send_due()
    assert submission(pop3, queued["id"])["status"] == "sent"
    assert len(delivered(postfix, bob)) == 1
    sent = pop3.call("GET", "/messages", params={"folder_id": pop3.folder_id("Sent")}).json()
    assert [m["subject"] for m in sent["items"]] == ["From POP3"]
    # the state a crash after the copy and before the record leaves: found, not copied again
    with gateway.engine.begin() as connection:
        connection.execute(
            update(Submission).values(status="sending", claimed_until=utcnow(), sent_copy_id=None)
        )
    Sender(gateway).send_due()
    again = submission(pop3, queued["id"])
    assert again["status"] == "sent" and "its copy was in Sent already" in again["smtp_response"]
    assert _sent_copies(pop3, queued["message_id"]) == 1
    assert_arrived_exactly(postfix, bob, 1)


@BOTH_DATABASES
def test_an_api_only_process_queues_and_a_sending_process_delivers(
    alice: Mailbox, bob: MailUser, postfix: PostfixServer, gateway: Gateway, database: str
) -> None:
    """`MAILGATE_SEND_WORKER=false`: the process serves the API and sends nothing; a process
    with the worker on the same database delivers what it queued."""
    api_only = Gateway.from_settings(gateway.settings.model_copy(update={"send_worker": False}))
    try:
        with TestClient(create_app(api_only, background=True)) as front:
            answer = front.post(
                alice.base + "/send",
                json={"to": [{"email": bob.username}], "text": "queued here"},
                headers=alice.auth,
            )
            assert answer.status_code == 202, answer.text
            time.sleep(1.5)  # its worker would have woken at once
            path = alice.base + f"/submissions/{answer.json()['id']}"
            assert front.get(path, headers=alice.auth).json()["status"] == "queued"
    finally:
        api_only.close()
    with TestClient(create_app(gateway, background=True)):
        _wait_for(lambda: submission(alice, answer.json()["id"])["status"] == "sent")
    [message] = delivered(postfix, bob)
    assert message["Message-ID"] == answer.json()["message_id"]


def assert_arrived_exactly(postfix: PostfixServer, user: MailUser, count: int) -> None:
    """``count`` messages and no more: anything a second send would bring is in by then."""
    time.sleep(0.5)
    assert len(postfix.wait_for_delivery(user, count)) == count


def _make_due(gateway: Gateway) -> None:
    with gateway.engine.begin() as connection:
        connection.execute(update(Submission).values(next_attempt_at=utcnow()))


def _row(gateway: Gateway, submission_id: str) -> Submission:
    with Session(gateway.engine) as session:
        row = session.exec(select(Submission).where(col(Submission.id) == submission_id)).one()
        return row


def _wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _worker_process(gateway: Gateway, tmp_path: Path) -> subprocess.Popen[bytes]:
    """`Sender.send_due` in a process of its own, on the same database and key."""
    script = (
        "from mailgate.gateway.context import Gateway\n"
        "from mailgate.gateway.settings import Settings\n"
        "from mailgate.events.sender import Sender\n"
        "Sender(Gateway.from_settings(Settings())).send_due()\n"
    )
    env = {
        **os.environ,
        "MAILGATE_DATABASE_URL": gateway.settings.resolved_database_url,
        "MAILGATE_DATA_DIR": str(gateway.settings.data_dir),
        "MAILGATE_CONNECT_TIMEOUT": "5",
    }
    log = (tmp_path / "worker.log").open("wb")
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=log, stderr=log)


def test_a_draft_is_sent_as_it_is_and_leaves_the_drafts_folder(
    alice: Mailbox,
    bob: MailUser,
    postfix: PostfixServer,
    gateway: Gateway,
    oauth_dovecot: DovecotServer,
) -> None:
    carol = person(oauth_dovecot, postfix, "carol")
    body = {
        "to": [{"email": bob.username}],
        "bcc": [{"email": carol.username}],
        "subject": "From a draft",
        "text": "Written earlier.",
    }
    draft = alice.call("POST", "/drafts", json=body)
    assert draft.status_code == 201, draft.text
    queued = alice.client.post(f"{alice.base}/drafts/{draft.json()['id']}/send", headers=alice.auth)
    assert queued.status_code == 202, queued.text
    Sender(gateway).send_due()
    assert submission(alice, queued.json()["id"])["status"] == "sent"
    [message] = delivered(postfix, bob)
    assert message["Subject"] == "From a draft" and message["Bcc"] is None
    assert carol.username not in message.as_string()
    assert len(delivered(postfix, carol)) == 1
    assert alice.call("GET", f"/messages/{draft.json()['id']}").status_code == 404


@BOTH_DATABASES
def test_a_draft_another_client_left_with_an_overlong_message_id_goes_with_a_fresh_one(
    database: str,
    alice: Mailbox,
    bob: MailUser,
    postfix: PostfixServer,
    gateway: Gateway,
    oauth_dovecot: DovecotServer,
) -> None:
    """A Message-ID no header line can hold (1,500 characters; RFC 5322 section 2.1.1 allows
    998 a line), as another mail client may leave in a draft: it failed the submission's
    insert on PostgreSQL (a 500). The message goes with an id of the gateway's making."""
    overlong = "<" + "x" * 1500 + "@elsewhere.test>"
    raw = (
        f"From: Alice <{alice.user.username}>\r\nTo: {bob.username}\r\n"
        f"Subject: Left by another client\r\nMessage-ID: {overlong}\r\n\r\nWritten elsewhere.\r\n"
    ).encode()
    oauth_dovecot.append(alice.user, raw, folder="Drafts", flags=[b"\\Draft"])
    [draft] = alice.messages("Drafts")
    queued = alice.client.post(f"{alice.base}/drafts/{draft['id']}/send", headers=alice.auth)
    assert queued.status_code == 202, queued.text
    Sender(gateway).send_due()
    assert submission(alice, queued.json()["id"])["status"] == "sent"
    [message] = delivered(postfix, bob)
    assert message["Subject"] == "Left by another client"
    sent_id = str(message["Message-ID"])
    assert sent_id.endswith(f"@{alice.user.username.rpartition('@')[2]}>") and len(sent_id) < 100
    assert alice.call("GET", f"/messages/{draft['id']}").status_code == 404
