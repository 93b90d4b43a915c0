"""The SMTP submission test harness itself (issue 13): a private Postfix that authenticates
through the test Dovecot (passwords and OAuth2 tokens) and delivers into its mailboxes over
LMTP, driven by raw smtplib, no Mailgate code."""

from __future__ import annotations

import json
import secrets
import smtplib
from collections.abc import Callable, Iterator

import pytest

from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.oauth import OAuthServer, oauthbearer_response, xoauth2_response
from tests.harness.postfix import DEFAULT_SIZE_LIMIT, PostfixServer

CHALLENGE = {"status": "401", "schemes": "bearer", "scope": "mail"}


def message(sender: str, to: str, body: bytes = b"Hello over SMTP.\r\n") -> bytes:
    subject = f"harness {secrets.token_hex(4)}"
    return (
        f"From: Sender <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{secrets.token_hex(8)}@example.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body


def submission(postfix: PostfixServer) -> smtplib.SMTP:
    """Connected to the submission port, after STARTTLS and the second EHLO."""
    smtp = smtplib.SMTP(postfix.host, postfix.submission_port, timeout=10)
    smtp.starttls(context=postfix.ssl_context())
    smtp.ehlo()
    return smtp


def login_plain(smtp: smtplib.SMTP, user: MailUser, password: str | None = None) -> None:
    """AUTH PLAIN only (smtplib's login() would fall back to LOGIN after a refusal)."""
    smtp.user, smtp.password = user.username, password or user.password
    smtp.auth("PLAIN", smtp.auth_plain)


def oauth_mechanism(initial: bytes, challenges: list[bytes]) -> Callable[..., str]:
    """An smtplib auth object: the initial response, then an empty line to any challenge."""

    def respond(challenge: bytes | None = None) -> str:
        if challenge is None:
            return initial.decode()
        challenges.append(challenge)
        return ""

    return respond


@pytest.fixture
def sender(smtp_user: MailUser) -> MailUser:
    return smtp_user


@pytest.fixture
def recipient(oauth_dovecot: DovecotServer, postfix: PostfixServer) -> Iterator[MailUser]:
    user = oauth_dovecot.add_user()
    postfix.add_recipient(user)
    yield user


def test_submission_with_starttls_delivers_into_the_recipients_inbox(
    postfix: PostfixServer, oauth_dovecot: DovecotServer, sender: MailUser, recipient: MailUser
) -> None:
    to = postfix.address(recipient)
    assert to == f"{recipient.username}@example.test"
    raw = message(postfix.address(sender), to, "Grüße, line two\r\n.dot line\r\n".encode())
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")  # AUTH only once TLS is on
        smtp.starttls(context=postfix.ssl_context())
        smtp.ehlo()
        assert "PLAIN" in smtp.esmtp_features["auth"].split()
        assert "XOAUTH2" in smtp.esmtp_features["auth"].split()
        login_plain(smtp, sender)
        assert smtp.sendmail(postfix.address(sender), [to], raw) == {}
    [delivered] = postfix.wait_for_delivery(recipient, 1)
    assert delivered.parent == oauth_dovecot.maildir(recipient) / "new"
    content = delivered.read_bytes()
    # Dovecot stores LF line ends; Postfix and Dovecot only prepend trace headers.
    assert content.endswith(raw.replace(b"\r\n", b"\n"))
    trace = content[: -len(raw.replace(b"\r\n", b"\n"))]
    assert trace.startswith(f"Return-Path: <{postfix.address(sender)}>\n".encode())
    assert f"Delivered-To: {to}\n".encode() in trace
    assert b"Received: from " in trace
    assert b" with ESMTPSA id " in trace  # ESMTP + TLS + AUTH
    # and the mailbox shows it over IMAP
    with oauth_dovecot.imap_client(recipient) as client:
        client.select_folder("INBOX")
        [uid] = client.search()
        body = client.fetch([uid], ["BODY.PEEK[TEXT]"])[uid][b"BODY[TEXT]"]
    assert body == "Grüße, line two\r\n.dot line\r\n".encode()


def test_implicit_tls_port(postfix: PostfixServer, sender: MailUser, recipient: MailUser) -> None:
    with smtplib.SMTP_SSL(
        postfix.host, postfix.smtps_port, context=postfix.ssl_context(), timeout=10
    ) as smtp:
        login_plain(smtp, sender)
        smtp.sendmail(postfix.address(sender), [postfix.address(recipient)], message("a", "b"))
    postfix.wait_for_delivery(recipient, 1)


def test_plaintext_port_takes_auth_without_tls(
    postfix: PostfixServer, sender: MailUser, recipient: MailUser
) -> None:
    with smtplib.SMTP(postfix.host, postfix.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        login_plain(smtp, sender)
        smtp.sendmail(postfix.address(sender), [postfix.address(recipient)], message("a", "b"))
    postfix.wait_for_delivery(recipient, 1)


def test_user_names_with_a_domain_are_their_own_address(
    postfix: PostfixServer, oauth_dovecot: DovecotServer, sender: MailUser
) -> None:
    carol = oauth_dovecot.add_user(f"carol-{secrets.token_hex(3)}@corp.test")
    assert postfix.add_recipient(carol) == carol.username
    with submission(postfix) as smtp:
        login_plain(smtp, sender)
        smtp.sendmail(postfix.address(sender), [carol.username], message("a", carol.username))
    postfix.wait_for_delivery(carol, 1)


def test_wrong_password_is_535(postfix: PostfixServer, sender: MailUser) -> None:
    with submission(postfix) as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        login_plain(smtp, sender, password="wrong-password")
    assert refused.value.smtp_code == 535
    assert refused.value.smtp_error.startswith(b"5.7.8 ")


def test_without_auth_the_recipient_is_refused(
    postfix: PostfixServer, sender: MailUser, recipient: MailUser
) -> None:
    to = postfix.address(recipient)
    with submission(postfix) as smtp, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        smtp.sendmail(postfix.address(sender), [to], message("a", to))
    code, text = refused.value.recipients[to]
    assert code == 554
    assert text.startswith(b"5.7.1 ") and b"Client host rejected" in text


def test_unknown_local_recipient_is_550(postfix: PostfixServer, sender: MailUser) -> None:
    to = f"nobody-{secrets.token_hex(3)}@example.test"
    with submission(postfix) as smtp:
        login_plain(smtp, sender)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(postfix.address(sender), [to], message("a", to))
    code, text = refused.value.recipients[to]
    assert code == 550
    assert text.startswith(b"5.1.1 ") and b"User unknown in virtual mailbox table" in text


def test_another_domain_is_not_relayed(postfix: PostfixServer, sender: MailUser) -> None:
    to = "someone@elsewhere.example"
    with submission(postfix) as smtp:
        login_plain(smtp, sender)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(postfix.address(sender), [to], message("a", to))
    code, text = refused.value.recipients[to]
    assert code == 554
    assert text.startswith(b"5.7.1 ") and b"Relay access denied" in text


def test_message_size_limit_is_552(
    postfix: PostfixServer, sender: MailUser, recipient: MailUser
) -> None:
    to = postfix.address(recipient)
    big = message("a", to, b"x" * 78 + b"\r\n") + b"y" * 78 * 1000
    postfix.set_message_size_limit(50_000)
    try:
        with submission(postfix) as smtp:
            assert smtp.esmtp_features["size"] == "50000"
            login_plain(smtp, sender)
            # smtplib announces SIZE=...: refused at MAIL FROM
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                smtp.sendmail(postfix.address(sender), [to], big)
            assert refused.value.smtp_code == 552
            assert refused.value.smtp_error.startswith(b"5.3.4 ")
            smtp.rset()
            # without SIZE: refused after DATA
            assert smtp.mail(postfix.address(sender))[0] == 250
            assert smtp.rcpt(to)[0] == 250
            code, text = smtp.data(big)
            assert code == 552 and text == b"5.3.4 Error: message file too big"
    finally:
        postfix.set_message_size_limit(DEFAULT_SIZE_LIMIT)


def test_xoauth2_and_oauthbearer_with_a_token(
    postfix: PostfixServer, oauth_server: OAuthServer, sender: MailUser, recipient: MailUser
) -> None:
    token = oauth_server.issue_tokens(sender.username)["access_token"]
    for mechanism, initial in (
        ("XOAUTH2", xoauth2_response(sender.username, token)),
        ("OAUTHBEARER", oauthbearer_response(sender.username, token)),
    ):
        challenges: list[bytes] = []
        with submission(postfix) as smtp:
            code, _ = smtp.auth(mechanism, oauth_mechanism(initial, challenges))
            assert code == 235
            smtp.sendmail(postfix.address(sender), [postfix.address(recipient)], message("a", "b"))
        assert challenges == []
    postfix.wait_for_delivery(recipient, 2)


def test_a_revoked_token_gets_the_challenge_then_535(
    postfix: PostfixServer, oauth_server: OAuthServer, sender: MailUser
) -> None:
    token = oauth_server.issue_tokens(sender.username)["access_token"]
    oauth_server.revoke_user(sender.username)
    challenges: list[bytes] = []
    with submission(postfix) as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        smtp.auth("XOAUTH2", oauth_mechanism(xoauth2_response(sender.username, token), challenges))
    assert [json.loads(c) for c in challenges] == [CHALLENGE]
    assert refused.value.smtp_code == 535


def test_a_password_is_no_token(postfix: PostfixServer, sender: MailUser) -> None:
    challenges: list[bytes] = []
    initial = xoauth2_response(sender.username, sender.password)
    with submission(postfix) as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        smtp.auth("XOAUTH2", oauth_mechanism(initial, challenges))
    assert refused.value.smtp_code == 535


def test_recipient_reply_knob_answers_4xx_then_normal_again(
    postfix: PostfixServer, sender: MailUser, recipient: MailUser
) -> None:
    to = postfix.address(recipient)
    with postfix.recipient_reply(to), submission(postfix) as smtp:
        login_plain(smtp, sender)
        assert smtp.mail(postfix.address(sender))[0] == 250
        code, text = smtp.rcpt(to)
        assert (code, text) == (
            450,
            b"4.2.1 <" + to.encode() + b">: Recipient address rejected:"
            b" Mailbox temporarily unavailable (test)",
        )
    with submission(postfix) as smtp:
        login_plain(smtp, sender)
        smtp.sendmail(postfix.address(sender), [to], message("a", to))
    postfix.wait_for_delivery(recipient, 1)


def test_any_reply_for_any_address(postfix: PostfixServer, sender: MailUser) -> None:
    to = "ghost@elsewhere.example"
    with postfix.recipient_reply(to, "550 5.2.1 Mailbox disabled"), submission(postfix) as smtp:
        login_plain(smtp, sender)
        smtp.mail(postfix.address(sender))
        code, text = smtp.rcpt(to)
    assert code == 550 and text.startswith(b"5.2.1 ") and text.endswith(b"Mailbox disabled")
    with pytest.raises(ValueError):
        postfix.set_recipient_reply(to, "250 fine")


def test_stop_and_start_on_the_same_ports(
    postfix: PostfixServer, sender: MailUser, recipient: MailUser
) -> None:
    ports = dict(postfix.ports)
    postfix.stop()
    try:
        for port in ports.values():
            with pytest.raises(ConnectionRefusedError):
                smtplib.SMTP(postfix.host, port, timeout=10)
    finally:
        postfix.start()
    assert postfix.ports == ports
    with submission(postfix) as smtp:
        login_plain(smtp, sender)
        smtp.sendmail(postfix.address(sender), [postfix.address(recipient)], message("a", "b"))
    postfix.wait_for_delivery(recipient, 1)
    assert "daemon started" in postfix.maillog_file.read_text()
