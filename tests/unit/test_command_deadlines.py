"""adapters._net.CommandDeadlines: each command on a connection within its own deadline."""

from __future__ import annotations

import socket
import time

from mailgate.adapters._net import CommandDeadlines


def test_a_command_not_answered_in_time_ends_the_connection() -> None:
    ours, server = socket.socketpair()
    deadlines = CommandDeadlines(ours, 0.3)
    started = time.monotonic()
    try:
        with deadlines("RETR"):
            server.sendall(b"+OK part of it\r\n")
            assert ours.recv(100) == b"+OK part of it\r\n"
            assert ours.recv(100) == b""  # the rest never comes: cut, not waited for
    finally:
        ours.close()
        server.close()
    assert 0.25 < time.monotonic() - started < 2
    assert deadlines.expired
    assert "RETR within 0.3 s" in deadlines.overdue().detail


def test_commands_each_in_time_never_expire_however_long_they_take_together() -> None:
    ours, server = socket.socketpair()
    deadlines = CommandDeadlines(ours, 0.3)
    try:
        for _ in range(6):  # 1.2 s of commands, and 0.6 s between them, none of them late
            with deadlines("RETR"):
                time.sleep(0.2)
                server.sendall(b"+OK\r\n")
                assert ours.recv(100) == b"+OK\r\n"
            time.sleep(0.1)
        time.sleep(0.4)  # nothing is armed between commands
        assert not deadlines.expired
        server.sendall(b"still here\r\n")
        assert ours.recv(100) == b"still here\r\n"
    finally:
        ours.close()
        server.close()
