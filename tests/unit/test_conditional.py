"""If-None-Match against an ETag (RFC 9110 section 13.1.2): weak comparison, lists, `*`."""

from __future__ import annotations

import pytest

from mailgate.api.conditional import etag_of, none_match


def test_the_etag_is_weak_and_follows_the_content() -> None:
    assert etag_of(b'{"a":1}') == etag_of(b'{"a":1}')
    assert etag_of(b'{"a":1}') != etag_of(b'{"a":2}')
    assert etag_of(b"x").startswith('W/"') and etag_of(b"x").endswith('"')


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('W/"abc"', True),
        ('"abc"', True),  # weak comparison: W/ does not matter
        ('"x", W/"abc"', True),
        (' "x" ,  "abc" ', True),
        ("*", True),
        ('"abcd"', False),
        ('W/"ab"', False),
        (",,", False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert none_match(header, 'W/"abc"') is matches
