"""adapters.imap.idle: whether INBOX moved between a watch round and the SELECT before IDLE."""

from __future__ import annotations

from mailgate.adapters.imap.idle import _moved


def test_inbox_moved_by_count_or_uidnext() -> None:
    seen = (11, 10)  # UIDNEXT, MESSAGES as the round saw them
    assert not _moved({b"EXISTS": 10, b"UIDNEXT": 11}, seen)
    assert _moved({b"EXISTS": 11, b"UIDNEXT": 12}, seen)  # new mail
    assert _moved({b"EXISTS": 9, b"UIDNEXT": 11}, seen)  # one expunged
    assert _moved({b"EXISTS": 10, b"UIDNEXT": 12}, seen)  # one came, one went
    # Courier's SELECT sends no UIDNEXT: the count alone tells
    assert _moved({b"EXISTS": 11}, seen)
    assert not _moved({b"EXISTS": 10}, seen)
