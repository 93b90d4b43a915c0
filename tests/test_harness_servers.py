"""The Cyrus and Courier test servers themselves (tests/harness/cyrus.py, courier.py), against
the real servers: what a mail client sees is what the harness seeded, over IMAP, POP3 and TLS.

Timings (start, first login, stop, seeding) are printed: run with -s to see them.
"""

from __future__ import annotations

import poplib
import re
import ssl
import time
from pathlib import Path

import imapclient
import pytest
from imapclient.exceptions import IMAPClientAbortError, LoginError

from tests.harness.courier import ETC, ETC_BACKUP, CourierError, CourierServer
from tests.harness.cyrus import CyrusServer
from tests.harness.dovecot import MailUser

pytestmark = pytest.mark.interop

Server = CyrusServer | CourierServer

# A folder other than INBOX, as a client names it on each server.
OTHER = {"cyrus": "Projects/Sub", "courier": "INBOX.Projects.Sub"}
BIG = {"cyrus": "Big", "courier": "INBOX.Big"}
# Known server behaviour the gateway has to live with (asserted, so a change shows up).
UIDL_SHAPE = {"cyrus": r"\d+\.\d+", "courier": r"UID\d+-\d+"}
RETR_SETS_SEEN = {"cyrus": False, "courier": True}
DATES = [1_700_000_000.0, 1_700_000_060.0, 1_700_000_120.0]


def message(subject: str, body: str = "hello") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture(params=["cyrus", "courier"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(kind: str, request: pytest.FixtureRequest) -> Server:
    found = request.getfixturevalue(kind)
    assert isinstance(found, CyrusServer | CourierServer)
    return found


@pytest.fixture
def user(kind: str, request: pytest.FixtureRequest) -> MailUser:
    """The fixtures' own fresh user: cyrus_user or courier_user."""
    found = request.getfixturevalue(f"{kind}_user")
    assert isinstance(found, MailUser)
    return found


def connect(server: Server, user: MailUser) -> imapclient.IMAPClient:
    """An IMAP client of our own (not the harness'), with time zones kept on INTERNALDATE."""
    client = imapclient.IMAPClient(server.host, server.imap_port, ssl=False, timeout=10)
    client.normalise_times = False
    client.login(user.username, user.password)
    return client


def mailbox(client: imapclient.IMAPClient, folder: str) -> list[tuple[str, bool, float]]:
    """(subject, seen, INTERNALDATE) of each message, in UID order."""
    client.select_folder(folder, readonly=True)
    uids = client.search("ALL")
    fetched = client.fetch(uids, ["ENVELOPE", "FLAGS", "INTERNALDATE"])
    return [
        (
            fetched[uid][b"ENVELOPE"].subject.decode(),
            b"\\Seen" in fetched[uid][b"FLAGS"],
            fetched[uid][b"INTERNALDATE"].timestamp(),
        )
        for uid in sorted(uids)
    ]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def pop3_login(server: Server, user: MailUser) -> poplib.POP3:
    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    pop.user(user.username)
    pop.pass_(user.password)
    return pop


# -- what a client sees ------------------------------------------------------------------------


def test_imap_sees_exactly_the_delivered_mail(kind: str, server: Server, user: MailUser) -> None:
    server.deliver(user, [message("one"), message("two")], internal_dates=DATES[:2])
    server.deliver(user, [message("three")], flags="S", internal_dates=DATES[2:])
    server.deliver(user, [message("four"), message("five")], folder=OTHER[kind])

    with connect(server, user) as client:
        assert mailbox(client, "INBOX") == [
            ("one", False, DATES[0]),
            ("two", False, DATES[1]),
            ("three", True, DATES[2]),
        ]
        assert [(s, seen) for s, seen, _ in mailbox(client, OTHER[kind])] == [
            ("four", False),
            ("five", False),
        ]


def test_deliver_again_and_append_continue_the_uids(server: Server, user: MailUser) -> None:
    server.deliver(user, [message("first")])
    with server.imap_client(user) as client:
        client.select_folder("INBOX")
        client.delete_messages(client.search("ALL"))
        client.expunge()
    server.deliver(user, [message("second"), message("third")], flags="FS")
    uid = server.append(user, message("appended"), flags=[b"\\Flagged"])

    with connect(server, user) as client:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["ENVELOPE", "FLAGS"])
    subjects = {fetched[u][b"ENVELOPE"].subject.decode(): u for u in fetched}
    assert set(subjects) == {"second", "third", "appended"}
    assert sorted(fetched) == [2, 3, 4]  # UID 1 (expunged) is not used again
    assert subjects["second"] < subjects["third"]
    assert subjects["appended"] == uid
    assert {b"\\Seen", b"\\Flagged"} <= set(fetched[subjects["third"]][b"FLAGS"])
    assert set(fetched[uid][b"FLAGS"]) - {b"\\Recent"} == {b"\\Flagged"}


def test_pop3_lists_the_inbox_with_uidl(kind: str, server: Server, user: MailUser) -> None:
    server.deliver(user, [message("one"), message("two")])
    server.deliver(user, [message("three")], flags="S")
    server.deliver(user, [message("elsewhere")], folder=OTHER[kind])

    pop = pop3_login(server, user)
    try:
        count, _ = pop.stat()
        _, listing, _ = pop.uidl()
        uidls = [line.split()[1].decode() for line in listing]
        subjects = []
        for number in range(1, count + 1):
            _, lines, _ = pop.retr(number)
            subjects += [line[9:].decode() for line in lines if line.startswith(b"Subject: ")]
    finally:
        pop.quit()
    print(f"\n{kind} POP3 UIDLs: {uidls}")
    assert count == 3
    assert sorted(subjects) == ["one", "three", "two"]
    assert len(set(uidls)) == 3
    assert all(re.fullmatch(UIDL_SHAPE[kind], uidl) for uidl in uidls)
    with connect(server, user) as client:
        seen = [s for s, is_seen, _ in mailbox(client, "INBOX") if is_seen]
    assert sorted(seen) == (["one", "three", "two"] if RETR_SETS_SEEN[kind] else ["three"])


def test_folders_of_a_fresh_user(kind: str, server: Server, user: MailUser) -> None:
    with connect(server, user) as client:
        listed = {
            name: {flag.lower() for flag in flags} for flags, _, name in client.list_folders()
        }
        subscribed = {name for _, _, name in client.list_sub_folders()}
    if isinstance(server, CyrusServer):
        # Cyrus answers special-use flags in lower case (\sent): compare case-insensitively.
        roles = {"Drafts": "drafts", "Sent": "sent", "Trash": "trash", "Junk": "junk"}
        roles["Archive"] = "archive"
        assert set(listed) == {"INBOX", *roles}
        assert all(b"\\" + role.encode() in listed[name] for name, role in roles.items())
        assert set(roles) <= subscribed
    else:
        assert set(listed) == {"INBOX"}  # a plain Courier user: no Sent, Trash, Drafts
        assert server.make_folder(user, "Sent") == "INBOX.Sent"
        other = server.add_user(folders=("Sent", "INBOX.Trash"))
        with connect(server, other) as client:
            assert {name for _, _, name in client.list_folders()} == {
                "INBOX",
                "INBOX.Sent",
                "INBOX.Trash",
            }
            assert {"INBOX.Sent", "INBOX.Trash"} <= {n for _, _, n in client.list_sub_folders()}


def test_capabilities_and_namespace(kind: str, server: Server, user: MailUser) -> None:
    with connect(server, user) as client:
        capabilities = set(client.capabilities())
        namespace = client.namespace()
        selected = client.select_folder("INBOX")
    print(f"\n{kind} capabilities after login: {b' '.join(sorted(capabilities)).decode()}")
    print(f"{kind} namespace: {namespace}")
    assert {b"UIDPLUS", b"IDLE", b"NAMESPACE"} <= capabilities
    if isinstance(server, CyrusServer):
        assert {b"MOVE", b"CONDSTORE", b"QRESYNC", b"SPECIAL-USE", b"MULTIAPPEND"} <= capabilities
        assert namespace.personal == (("", "/"),)
        assert b"UIDNEXT" in selected
    else:
        missing = {b"CONDSTORE", b"QRESYNC", b"MOVE", b"ESEARCH", b"SPECIAL-USE", b"NOTIFY"}
        assert not missing & capabilities
        assert not {b"MULTIAPPEND", b"LITERAL+"} & capabilities
        assert namespace.personal == (("INBOX.", "."),)
        assert b"UIDNEXT" not in selected  # Courier's SELECT has none (STATUS does)


# -- TLS and authentication --------------------------------------------------------------------


def test_implicit_tls_verifies_with_the_harness_ca(server: Server, user: MailUser) -> None:
    with server.imap_client(user, tls=True) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.ssl_context(), timeout=10)
    pop.user(user.username)
    pop.pass_(user.password)
    assert pop.stat()[0] == 0
    pop.quit()
    with pytest.raises(ssl.SSLCertVerificationError):  # the system CAs do not know it
        poplib.POP3_SSL(server.host, server.pop3s_port, context=ssl.create_default_context())


def test_starttls_and_stls(server: Server, user: MailUser) -> None:
    client = imapclient.IMAPClient(server.host, server.imap_port, ssl=False, timeout=10)
    assert b"STARTTLS" in client.capabilities()
    client.starttls(server.ssl_context())
    assert isinstance(client.socket(), ssl.SSLSocket)
    client.login(user.username, user.password)
    client.logout()

    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    assert "STLS" in pop.capa()
    pop.stls(context=server.ssl_context())
    assert isinstance(pop.sock, ssl.SSLSocket)
    pop.user(user.username)
    pop.pass_(user.password)
    pop.quit()


def test_wrong_password_is_refused(kind: str, server: Server, user: MailUser) -> None:
    started = time.monotonic()
    client = imapclient.IMAPClient(server.host, server.imap_port, ssl=False, timeout=10)
    with pytest.raises(LoginError):
        client.login(user.username, user.password + "x")
    client.shutdown()
    imap_took = time.monotonic() - started

    started = time.monotonic()
    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    pop.user(user.username)
    with pytest.raises(poplib.error_proto):
        pop.pass_(user.password + "x")
    pop.close()
    # Courier answers after 5 s whatever its config (a sleep(5) compiled into imaplogin and
    # courierpop3login); Cyrus at once with failedloginpause: 0.
    print(
        f"\n{kind} refuses a wrong password: IMAP {imap_took:.3f} s,"
        f" POP3 {time.monotonic() - started:.3f} s"
    )
    with server.imap_client(user):
        pass  # the right one still works


# -- lifecycle ---------------------------------------------------------------------------------


def test_restart_keeps_users_mail_and_ports(kind: str, server: Server, user: MailUser) -> None:
    server.deliver(user, [message("kept")], internal_dates=DATES[:1])
    ports = dict(server.ports)
    processes = server.pids()
    assert processes
    session = connect(server, user)
    session.select_folder("INBOX")

    started = time.monotonic()
    server.stop()
    stop_took = time.monotonic() - started
    assert not [pid for pid in processes if alive(pid)]
    with pytest.raises((IMAPClientAbortError, OSError)):  # sessions end with the server
        session.noop()
    if isinstance(server, CourierServer):
        assert not ETC_BACKUP.exists()
        assert "tests/harness" not in (ETC / "authdaemonrc").read_text()

    started = time.monotonic()
    server.start()
    with connect(server, user) as client:
        first_login = time.monotonic() - started
        assert mailbox(client, "INBOX") == [("kept", False, DATES[0])]
    print(f"\n{kind} restart: stop {stop_took:.3f} s, start to first login {first_login:.3f} s")
    assert server.ports == ports


def test_fresh_server_lifecycle(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A new server from nothing: start, first login, stop, and nothing left running."""
    session: Server = request.getfixturevalue(kind)
    if isinstance(session, CourierServer):
        session.stop()  # one Courier per machine
    fresh: Server = CyrusServer(tmp_path) if kind == "cyrus" else CourierServer(tmp_path)
    try:
        started = time.monotonic()
        fresh.start()
        greeted = time.monotonic() - started
        user = fresh.add_user()
        with connect(fresh, user) as client:
            first_login = time.monotonic() - started
            assert client.select_folder("INBOX")[b"EXISTS"] == 0
        if isinstance(fresh, CourierServer):
            with pytest.raises(CourierError, match="another Courier test server is running"):
                CourierServer(tmp_path / "second").start()
        processes = fresh.pids()
        started = time.monotonic()
        fresh.stop()
        stop_took = time.monotonic() - started
        assert not [pid for pid in processes if alive(pid)]
        fresh.stop()  # a second stop is a no-op
        print(
            f"\n{kind} fresh start: greeting {greeted:.3f} s, first login of a new user"
            f" {first_login:.3f} s, stop {stop_took:.3f} s"
        )
    finally:
        fresh.stop()
        if isinstance(session, CourierServer):
            session.start()


def test_seed_10000_messages(kind: str, server: Server, user: MailUser) -> None:
    messages = [message(f"seed {i}", f"body line of seeded message {i}") for i in range(10_000)]
    started = time.monotonic()
    server.deliver(user, messages, folder=BIG[kind])
    took = time.monotonic() - started
    with server.imap_client(user) as client:
        status = client.folder_status(BIG[kind], [b"MESSAGES"])
    print(f"\n{kind} seeded 10,000 messages in {took:.2f} s")
    assert status[b"MESSAGES"] == 10_000
