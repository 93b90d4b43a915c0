"""The fault-injection proxy (tests/harness/proxy.py) against the real Dovecot.

What the clients raise on each fault (asserted below):

=====================  ==========================================  ==============================
fault                  rst=True (default)                          rst=False (FIN)
=====================  ==========================================  ==============================
cut mid poplib RETR    ConnectionResetError (errno 104)            poplib.error_proto("-ERR EOF")
poplib cmd after drop  ConnectionResetError (sendall)              poplib.error_proto("-ERR EOF")
cut mid IMAP FETCH     ConnectionResetError                        IMAPClient.AbortError
                                                                   ("command: FETCH => socket
                                                                   error: EOF")
IMAP cmd after drop    IMAPClient.AbortError ("socket error:       IMAPClient.AbortError
                       [Errno 104] Connection reset by peer")      ("socket error: EOF")
stall                  TimeoutError from the IMAP command (and from IMAPClient() on a new
                       connection: no greeting)
=====================  ==========================================  ==============================
"""

from __future__ import annotations

import errno
import poplib
import socket
import threading
from collections.abc import Iterator

import imapclient
import pytest

from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.net import closed_port
from tests.harness.proxy import FaultProxy


def big_message(n: int, size: int) -> bytes:
    """A CRLF message of about *size* bytes, with a line POP3 must dot-stuff."""
    head = (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: Big {n}\r\n"
        f"Message-ID: <big.{n}@example.org>\r\n\r\n.a line starting with a dot\r\n"
    )
    line = f"{n:04d} " + "x" * 64 + "\r\n"
    return (head + line * (size // len(line))).encode()


def retr(pop: poplib.POP3, which: int) -> bytes:
    """RETR as the raw message: poplib strips the CRLFs and undoes the dot-stuffing."""
    return b"\r\n".join(pop.retr(which)[1]) + b"\r\n"


def pop_login(port: int, user: MailUser) -> poplib.POP3:
    pop = poplib.POP3("127.0.0.1", port, timeout=10)
    pop.user(user.username)
    pop.pass_(user.password)
    return pop


def imap_login(port: int, user: MailUser, timeout: float = 10) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient("127.0.0.1", port, ssl=False, timeout=timeout)
    client.login(user.username, user.password)
    return client


def raw_pop3_session(port: int, user: MailUser) -> tuple[bytes, str]:
    """USER, PASS, RETR 1, QUIT on a bare socket, step by step. Return every byte received
    and how the stream ended: "eof" or the exception's class name."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        steps = [
            (b"", b"\r\n"),
            (f"USER {user.username}\r\n".encode(), b"\r\n"),
            (f"PASS {user.password}\r\n".encode(), b"\r\n"),
            (b"RETR 1\r\n", b"\r\n.\r\n"),
            (b"QUIT\r\n", None),  # then read to EOF
        ]
        try:
            for command, until in steps:
                sock.sendall(command)
                start = len(received)
                while until is None or until not in received[start:]:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return bytes(received), "eof"
                    received += chunk
        except OSError as exc:
            return bytes(received), type(exc).__name__
    raise AssertionError("the server did not close after QUIT")


def end_of_nth(data: bytes, pattern: bytes, nth: int) -> int:
    """Offset just past the nth (non-overlapping) occurrence of *pattern* in *data*."""
    pos = 0
    for _ in range(nth):
        pos = data.index(pattern, pos) + len(pattern)
    return pos


@pytest.fixture
def pop3_proxy(dovecot: DovecotServer) -> Iterator[FaultProxy]:
    with FaultProxy((dovecot.host, dovecot.pop3_port)) as proxy:
        yield proxy


@pytest.fixture
def imap_proxy(dovecot: DovecotServer) -> Iterator[FaultProxy]:
    with FaultProxy((dovecot.host, dovecot.imap_port)) as proxy:
        yield proxy


# -- plain forwarding ----------------------------------------------------------------------


def test_forwards_pop3_byte_exact(
    dovecot: DovecotServer, mail_user: MailUser, pop3_proxy: FaultProxy
) -> None:
    msg = big_message(1, 300_000)
    dovecot.deliver(mail_user, [msg])
    pop = pop_login(pop3_proxy.port, mail_user)
    assert pop.stat() == (1, len(msg))
    assert retr(pop, 1) == msg
    pop.quit()
    assert pop3_proxy.connections == 1
    assert pop3_proxy.bytes_down > len(msg)
    assert pop3_proxy.bytes_up > 0


def test_raw_stream_is_identical_to_direct(
    dovecot: DovecotServer, mail_user: MailUser, pop3_proxy: FaultProxy
) -> None:
    dovecot.deliver(mail_user, [big_message(1, 200_000)])
    direct, end = raw_pop3_session(dovecot.pop3_port, mail_user)
    assert end == "eof"
    assert raw_pop3_session(pop3_proxy.port, mail_user) == (direct, "eof")
    assert pop3_proxy.bytes_down == len(direct)


def test_forwards_imap(dovecot: DovecotServer, mail_user: MailUser, imap_proxy: FaultProxy) -> None:
    msg = big_message(1, 100_000)
    dovecot.deliver(mail_user, [msg])
    with imap_login(imap_proxy.port, mail_user) as client:
        client.select_folder("INBOX")
        assert client.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"] == msg
        client.logout()


# -- cuts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rst", "end"), [(True, "ConnectionResetError"), (False, "eof")])
def test_cut_after_forwards_exactly_n_bytes(
    dovecot: DovecotServer, mail_user: MailUser, pop3_proxy: FaultProxy, rst: bool, end: str
) -> None:
    dovecot.deliver(mail_user, [big_message(1, 200_000)])
    direct, _ = raw_pop3_session(dovecot.pop3_port, mail_user)
    n = len(direct) // 2  # mid-RETR
    pop3_proxy.cut_after(n, rst=rst)
    assert raw_pop3_session(pop3_proxy.port, mail_user) == (direct[:n], end)
    assert pop3_proxy.bytes_down == n


@pytest.mark.parametrize("rst", [True, False])
def test_cut_when_nth_pattern_plus_extra(
    dovecot: DovecotServer, mail_user: MailUser, pop3_proxy: FaultProxy, rst: bool
) -> None:
    dovecot.deliver(mail_user, [big_message(1, 200_000)])
    direct, _ = raw_pop3_session(dovecot.pop3_port, mail_user)
    # greeting, USER, PASS, RETR: the 4th "+OK" starts the RETR answer
    cut = end_of_nth(direct, b"+OK", 4) + 1000
    pop3_proxy.cut_when(b"+OK", extra=1000, nth=4, rst=rst)
    received, end = raw_pop3_session(pop3_proxy.port, mail_user)
    assert received == direct[:cut]
    assert end == ("ConnectionResetError" if rst else "eof")


def test_cut_when_cuts_pop3_retr_of_third_message(
    dovecot: DovecotServer, mail_user: MailUser, pop3_proxy: FaultProxy
) -> None:
    messages = [big_message(i, 50_000 + 1000 * i) for i in range(3)]
    dovecot.deliver(mail_user, messages)
    pop3_proxy.cut_when(f"+OK {len(messages[2])} octets".encode(), extra=500)
    pop = pop_login(pop3_proxy.port, mail_user)
    assert pop.stat() == (3, sum(map(len, messages)))
    assert retr(pop, 1) == messages[0]
    assert retr(pop, 2) == messages[1]
    with pytest.raises(ConnectionResetError) as excinfo:
        pop.retr(3)
    assert excinfo.value.errno == errno.ECONNRESET
    with pytest.raises(BrokenPipeError):  # the socket is dead for good
        pop.noop()
    pop.close()

    pop3_proxy.reset()
    pop = pop_login(pop3_proxy.port, mail_user)
    assert pop.stat() == (3, sum(map(len, messages)))  # nothing deleted or lost
    assert retr(pop, 3) == messages[2]
    pop.quit()
    assert pop3_proxy.connections == 2


def test_cut_with_fin_makes_poplib_read_eof(
    dovecot: DovecotServer, mail_user: MailUser, pop3_proxy: FaultProxy
) -> None:
    messages = [big_message(i, 50_000) for i in range(3)]
    dovecot.deliver(mail_user, messages)
    octets = f"+OK {len(messages[0])} octets".encode()  # all three have the same size
    pop3_proxy.cut_when(octets, extra=500, nth=3, rst=False)
    pop = pop_login(pop3_proxy.port, mail_user)
    assert retr(pop, 1) == messages[0]
    assert retr(pop, 2) == messages[1]
    with pytest.raises(poplib.error_proto, match=r"^-ERR EOF$"):
        pop.retr(3)
    pop.close()


def test_cut_applies_to_new_connections_only(
    dovecot: DovecotServer, mail_user: MailUser, pop3_proxy: FaultProxy
) -> None:
    msg = big_message(1, 100_000)
    dovecot.deliver(mail_user, [msg])
    before = pop_login(pop3_proxy.port, mail_user)
    pop3_proxy.cut_after(10_000)  # mid-RETR of the new connection
    after = pop_login(pop3_proxy.port, mail_user)
    assert retr(before, 1) == msg
    with pytest.raises(ConnectionResetError):
        after.retr(1)
    before.quit()
    after.close()


def test_cut_mid_imap_fetch(
    dovecot: DovecotServer, mail_user: MailUser, imap_proxy: FaultProxy
) -> None:
    dovecot.deliver(mail_user, [big_message(1, 100_000)])
    imap_proxy.cut_when(b"BODY[] {", extra=1000)
    client = imap_login(imap_proxy.port, mail_user)
    client.select_folder("INBOX")
    with pytest.raises(ConnectionResetError):
        client.fetch([1], ["BODY.PEEK[]"])
    client.shutdown()


def test_cut_mid_imap_fetch_with_fin(
    dovecot: DovecotServer, mail_user: MailUser, imap_proxy: FaultProxy
) -> None:
    dovecot.deliver(mail_user, [big_message(1, 100_000)])
    imap_proxy.cut_when(b"BODY[] {", extra=1000, rst=False)
    client = imap_login(imap_proxy.port, mail_user)
    client.select_folder("INBOX")
    with pytest.raises(
        imapclient.IMAPClient.AbortError, match=r"^command: FETCH => socket error: EOF$"
    ):
        client.fetch([1], ["BODY.PEEK[]"])
    client.shutdown()


# -- stall, drop ---------------------------------------------------------------------------


def test_stall_times_out_imap_and_resume_recovers(
    dovecot: DovecotServer, mail_user: MailUser, imap_proxy: FaultProxy
) -> None:
    client = imap_login(imap_proxy.port, mail_user, timeout=1)
    imap_proxy.stall()
    with pytest.raises(TimeoutError):
        client.noop()
    # a new connection is accepted but gets no greeting
    with socket.create_connection(("127.0.0.1", imap_proxy.port), timeout=1) as raw:
        with pytest.raises(TimeoutError):
            raw.recv(100)
        assert imap_proxy.open_connections == 2  # stalled, not dropped
    client.shutdown()

    imap_proxy.resume()
    with imap_login(imap_proxy.port, mail_user, timeout=1) as fresh:
        assert fresh.noop()[0].startswith(b"NOOP completed")
        fresh.logout()
    assert imap_proxy.connections == 3


@pytest.mark.parametrize("rst", [True, False])
def test_drop_all_closes_idle_pop3(
    dovecot: DovecotServer, mail_user: MailUser, pop3_proxy: FaultProxy, rst: bool
) -> None:
    pop = pop_login(pop3_proxy.port, mail_user)
    assert pop.stat() == (0, 0)
    pop3_proxy.drop_all(rst=rst)
    assert pop3_proxy.open_connections == 0
    if rst:
        with pytest.raises(ConnectionResetError):
            pop.stat()
    else:
        with pytest.raises(poplib.error_proto, match=r"^-ERR EOF$"):
            pop.stat()
    pop.close()
    pop = pop_login(pop3_proxy.port, mail_user)  # new connections are fine
    assert pop.stat() == (0, 0)
    pop.quit()


@pytest.mark.parametrize(
    ("rst", "message"),
    [
        (True, r"^socket error: \[Errno 104\] Connection reset by peer$"),
        (False, r"^socket error: EOF$"),
    ],
)
def test_drop_all_closes_idle_imap(
    dovecot: DovecotServer,
    mail_user: MailUser,
    imap_proxy: FaultProxy,
    rst: bool,
    message: str,
) -> None:
    client = imap_login(imap_proxy.port, mail_user)
    client.select_folder("INBOX")
    imap_proxy.drop_all(rst=rst)
    with pytest.raises(imapclient.IMAPClient.AbortError, match=message):
        client.noop()
    client.shutdown()


# -- close ---------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_close_returns_with_open_connections(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.deliver(mail_user, [big_message(1, 2_000_000)])
    proxy = FaultProxy((dovecot.host, dovecot.pop3_port))
    idle = pop_login(proxy.port, mail_user)
    # a client that asks for 2 MB and reads none of it: the proxy's send side is blocked
    greedy = pop_login(proxy.port, mail_user)
    greedy.sock.sendall(b"RETR 1\r\n")
    stalled = pop_login(proxy.port, mail_user)
    proxy.stall()
    stalled.sock.sendall(b"NOOP\r\n")

    proxy.close()

    assert proxy.open_connections == 0
    assert not [t for t in threading.enumerate() if t.name.startswith(f"fault-proxy-{proxy.port}")]
    with pytest.raises(ConnectionResetError):
        idle.stat()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    for pop in (idle, greedy, stalled):
        pop.close()
    proxy.close()  # twice is fine


def test_target_down_resets_the_client() -> None:
    def greeting(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            return sock.recv(100)

    with FaultProxy(("127.0.0.1", closed_port())) as proxy:
        # from recv(), or from connect() itself when the reset beats it (poplib.POP3() raises
        # the same, but leaks its socket: hence a bare one)
        with pytest.raises(ConnectionResetError):
            greeting(proxy.port)
        assert proxy.connections == 1
