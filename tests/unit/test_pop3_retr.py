"""The fast RETR reader's pure part: dot-stuffing undone exactly as RFC 1939 says."""

from __future__ import annotations

from mailgate.adapters.pop3.retr import unstuff


def test_unstuff() -> None:
    assert unstuff(b"..leading\r\nmid\r\n..x\r\n...\r\n") == b".leading\r\nmid\r\n.x\r\n..\r\n"
    assert unstuff(b"no dots\r\n") == b"no dots\r\n"
    assert unstuff(b"") == b""
    assert unstuff(b"a.\r\n.b\r\n") == b"a.\r\n.b\r\n"  # only doubled leading dots change
