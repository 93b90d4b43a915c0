"""The test harness itself, against the real Dovecot."""

from __future__ import annotations

import imaplib
import poplib
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import imapclient
import pytest

from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.net import SilentListener, closed_port, free_port


def message(subject: str, body: str = "hello") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


def subjects(client: imapclient.IMAPClient, uids: list[int]) -> list[str]:
    fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return [
        fetched[uid][b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip()[len("Subject: ") :]
        for uid in uids
    ]


# -- IMAP -----------------------------------------------------------------------------------


def test_imap_login_plain(dovecot: DovecotServer, mail_user: MailUser) -> None:
    client = imapclient.IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=5)
    assert client.welcome.startswith(b"* OK")
    assert b"STARTTLS" in client.capabilities()
    client.login(mail_user.username, mail_user.password)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()


def test_imap_starttls_verifies_against_ca(dovecot: DovecotServer, mail_user: MailUser) -> None:
    client = imapclient.IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=5)
    client.starttls(dovecot.ssl_context())
    assert isinstance(client.socket(), ssl.SSLSocket)
    client.login(mail_user.username, mail_user.password)
    client.logout()


def test_imap_implicit_tls(dovecot: DovecotServer, mail_user: MailUser) -> None:
    context = dovecot.ssl_context()
    client = imapclient.IMAPClient(
        dovecot.host, dovecot.imaps_port, ssl=True, ssl_context=context, timeout=5
    )
    client.login(mail_user.username, mail_user.password)
    client.logout()
    # the certificate names "localhost" too
    with (
        socket.create_connection((dovecot.host, dovecot.imaps_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(100).startswith(b"* OK")


def test_tls_fails_without_the_test_ca(dovecot: DovecotServer) -> None:
    with (
        socket.create_connection((dovecot.host, dovecot.imaps_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_wrong_password_is_refused(dovecot: DovecotServer, mail_user: MailUser) -> None:
    client = imapclient.IMAPClient(dovecot.host, dovecot.imap_port, ssl=False, timeout=5)
    with pytest.raises(imapclient.exceptions.LoginError):
        client.login(mail_user.username, mail_user.password + "x")
    with pytest.raises(imapclient.exceptions.LoginError):
        client.login("no-such-user", "whatever")
    client.shutdown()
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=5)
    pop.user(mail_user.username)
    with pytest.raises(poplib.error_proto):
        pop.pass_("wrong")
    pop.close()


def test_usernames_are_case_insensitive(dovecot: DovecotServer) -> None:
    user = dovecot.add_user("Mixed.Case@example.org", "s3cret")
    login_as = MailUser("MIXED.case@example.org", "s3cret")
    dovecot.deliver(user, [message("case")])
    with dovecot.imap_client(login_as) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 1


# -- POP3 -----------------------------------------------------------------------------------


def pop3_stat(pop: poplib.POP3, user: MailUser) -> tuple[int, int]:
    pop.user(user.username)
    pop.pass_(user.password)
    stat = pop.stat()
    pop.quit()
    return stat


def test_pop3_plain_with_uidl(dovecot: DovecotServer, mail_user: MailUser) -> None:
    msg = message("pop3")
    dovecot.deliver(mail_user, [msg])
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=5)
    assert pop.getwelcome().startswith(b"+OK")
    pop.user(mail_user.username)
    pop.pass_(mail_user.password)
    assert pop.stat() == (1, len(msg))
    uidl = pop.uidl(1).split()[-1]
    assert len(uidl) == 16 and int(uidl, 16) > 0  # %08Xu%08Xv
    assert b"\r\n".join(pop.retr(1)[1]) + b"\r\n" == msg
    pop.quit()


def test_pop3_stls(dovecot: DovecotServer, mail_user: MailUser) -> None:
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=5)
    pop.stls(context=dovecot.ssl_context())
    assert isinstance(pop.sock, ssl.SSLSocket)
    assert pop3_stat(pop, mail_user) == (0, 0)


def test_pop3s(dovecot: DovecotServer, mail_user: MailUser) -> None:
    pop = poplib.POP3_SSL(
        dovecot.host, dovecot.pop3s_port, context=dovecot.ssl_context(), timeout=5
    )
    assert pop3_stat(pop, mail_user) == (0, 0)


# -- seeding ----------------------------------------------------------------------------------


def test_deliver_10000_messages(dovecot: DovecotServer, mail_user: MailUser) -> None:
    messages = [message(f"bulk {i}", "x" * 900) for i in range(10_000)]
    started = time.perf_counter()
    dovecot.deliver(mail_user, messages)
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    with dovecot.imap_client(mail_user) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 10_000
        selected = time.perf_counter() - started
        assert subjects(client, [1, 5000, 10_000]) == ["bulk 0", "bulk 4999", "bulk 9999"]
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=30)
    assert pop3_stat(pop, mail_user) == (10_000, sum(map(len, messages)))
    print(f"\nseeded 10,000 messages in {seeded:.2f} s; first IMAP SELECT took {selected:.2f} s")


def test_deliver_to_nested_and_unicode_folders(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.deliver(mail_user, [message("old")], folder="Archive/2024")
    dovecot.deliver(mail_user, [message("draft")], folder="Entwürfe/Größe")
    with dovecot.imap_client(mail_user) as client:
        folders = {name: flags for flags, _, name in client.list_folders()}
        assert {"Archive", "Archive/2024", "Entwürfe/Größe"} <= folders.keys()
        assert b"\\Archive" in folders["Archive"]
        assert client.select_folder("Archive/2024")[b"EXISTS"] == 1
        assert client.select_folder("Entwürfe/Größe")[b"EXISTS"] == 1
    assert dovecot.maildir(mail_user, "Archive/2024").name == ".Archive.2024"
    with pytest.raises(ValueError):
        dovecot.deliver(mail_user, [message("dot")], folder="a.b")


def test_deliver_flags_order_and_internal_dates(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    when = datetime(2020, 2, 3, 4, 5, 6, tzinfo=UTC)
    dovecot.deliver(mail_user, [message("seen")], flags="S", internal_dates=[when.timestamp()])
    dovecot.deliver(mail_user, [message("new")])
    dovecot.deliver(mail_user, [message("flagged seen")], flags="FS")
    with dovecot.imap_client(mail_user) as client:
        client.select_folder("INBOX")
        assert subjects(client, [1, 2, 3]) == ["seen", "new", "flagged seen"]
        fetched = client.fetch([1, 2, 3], ["FLAGS", "INTERNALDATE"])
        assert imapclient.SEEN in fetched[1][b"FLAGS"]
        assert imapclient.SEEN not in fetched[2][b"FLAGS"]
        assert {imapclient.SEEN, imapclient.FLAGGED} <= set(fetched[3][b"FLAGS"])
        assert fetched[1][b"INTERNALDATE"].timestamp() == when.timestamp()
        assert client.search("UNSEEN") == [2]


def test_parallel_users_do_not_interfere(dovecot: DovecotServer) -> None:
    users = [dovecot.add_user() for _ in range(4)]

    def seed(index: int) -> None:
        msgs = [message(f"u{index} m{i}") for i in range(50 * (index + 1))]
        dovecot.deliver(users[index], msgs)
        dovecot.deliver(users[index], msgs[:1], folder="Work/Done", flags="S")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(seed, range(4)))
    for index, user in enumerate(users):
        with dovecot.imap_client(user) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 50 * (index + 1)
            assert subjects(client, [1]) == [f"u{index} m0"]
            assert client.select_folder("Work/Done")[b"EXISTS"] == 1


def test_append_returns_uid(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.deliver(mail_user, [message("first"), message("second")])
    msg = message("appended")
    uid = dovecot.append(mail_user, msg, flags=[imapclient.FLAGGED])
    assert uid == 3
    with dovecot.imap_client(mail_user, tls=True) as client:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch([uid], ["BODY.PEEK[]", "FLAGS"])[uid]
        assert fetched[b"BODY[]"] == msg
        assert imapclient.FLAGGED in fetched[b"FLAGS"]
    assert dovecot.append(mail_user, message("sent"), folder="Sent") == 1


def test_new_user_works_without_reload(dovecot: DovecotServer, mail_user: MailUser) -> None:
    with dovecot.imap_client(mail_user):
        pass
    other = dovecot.add_user("second-" + mail_user.username)
    with dovecot.imap_client(other):
        pass
    with pytest.raises(ValueError):
        dovecot.add_user(other.username)


# -- lifecycle ---------------------------------------------------------------------------------


def test_restart_keeps_ports_users_and_mail(tmp_path: Path, dovecot: DovecotServer) -> None:
    server = DovecotServer(tmp_path)
    started = time.perf_counter()
    server.start()
    start_time = time.perf_counter() - started
    try:
        assert set(server.ports.values()).isdisjoint(dovecot.ports.values())
        user = server.add_user()
        server.deliver(user, [message("before restart")])
        ports = dict(server.ports)
        idle = server.imap_client(user)
        idle.select_folder("INBOX")
        idle.idle()
        started = time.perf_counter()
        server.restart()
        restart_time = time.perf_counter() - started
        assert server.ports == ports
        assert (b"BYE", b"Server", b"shutting", b"down.") in idle.idle_check(timeout=5)
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            idle.idle_done()
        with server.imap_client(user) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 1
        pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.ssl_context())
        assert pop3_stat(pop, user)[0] == 1
    finally:
        started = time.perf_counter()
        server.stop()
        stop_time = time.perf_counter() - started
    server.stop()  # stopping twice is fine
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, ports["imap"]), timeout=2)
    print(f"\nstart {start_time:.2f} s, restart {restart_time:.2f} s, stop {stop_time:.2f} s")


# -- network helpers --------------------------------------------------------------------------


def test_silent_listener_never_speaks(silent_listener: SilentListener) -> None:
    with socket.create_connection(silent_listener.address, timeout=2) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert silent_listener.accepted == 1


def test_closed_and_free_ports() -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
