"""LIST and STATUS answers read by hand (adapters/imap/listing.py), as real servers send
them; imapclient's lexer fails on the first of these (issue 11: "x[y" broke every list)."""

from __future__ import annotations

import pytest

from mailgate.adapters.imap.listing import parse_list, parse_status


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (b'(\\HasNoChildren) "/" x[y', ((b"\\HasNoChildren",), "/", "x[y")),  # Dovecot
        (b'(\\HasNoChildren) "/" "say \\"hi\\""', ((b"\\HasNoChildren",), "/", 'say "hi"')),
        (b'(\\HasNoChildren) "/" "back\\\\slash"', ((b"\\HasNoChildren",), "/", "back\\slash")),
        (b'() "." INBOX.Sent', ((), ".", "INBOX.Sent")),  # Courier
        (b'(\\Noselect) NIL ""', None),  # an empty name: nothing to list
        (b"(\\Noselect) NIL Public", ((b"\\Noselect",), None, "Public")),
        (b'(\\HasChildren) "\\\\" Work', ((b"\\HasChildren",), "\\", "Work")),
        (b'() "/" "&AOQ-rger"', ((), "/", "\u00e4rger")),  # modified UTF-7
        (b'() "/" "Gr\xc3\xbc\xc3\x9fe"', ((), "/", "Grüße")),  # 8-bit UTF-8, not UTF-7
        (b'() "/" "caf\xe9"', ((), "/", "café")),  # 8-bit Latin-1
        ((b'(\\HasNoChildren) "/" {7}', b"p(q) [r"), ((b"\\HasNoChildren",), "/", "p(q) [r")),
        (b"garbage", None),
        (b'(\\HasNoChildren "/" x', None),
        (b'() "/" "unclosed', None),
        (b'() "ab" x', None),
    ],
)
def test_one_list_line(item: bytes | tuple[bytes, bytes], expected: object) -> None:
    assert parse_list([item]) == ([expected] if expected else [])


def test_one_bad_line_leaves_the_others() -> None:
    lines = [b'() "/" INBOX', b"\x00\xff nonsense", None, b"", b'() "/" Sent']
    assert [name for _, _, name in parse_list(lines)] == ["INBOX", "Sent"]


def test_status_reads_the_list_at_the_end_whatever_the_name() -> None:
    assert parse_status([b"x[y (MESSAGES 3 UNSEEN 1)"]) == {b"MESSAGES": 3, b"UNSEEN": 1}
    assert parse_status([b'"a (b)" (MESSAGES 2 UIDNEXT 9)']) == {b"MESSAGES": 2, b"UIDNEXT": 9}
    literal = [(b"{5}", b"x (y)"), b" (MESSAGES 4)"]
    assert parse_status(literal) == {b"MESSAGES": 4}
    assert parse_status([b"Other (MESSAGES 1)", b"Mine (MESSAGES 7)"]) == {b"MESSAGES": 7}
    assert parse_status([b"nothing here"]) == {}
