"""Filters to SEARCH criteria: user strings are Text (sent as literals), dates are RFC 3501
dates within what servers accept."""

from __future__ import annotations

from datetime import UTC, datetime

from mailgate.adapters.imap.search import Text, search_criteria
from mailgate.domain.mail import MessageFilter


def test_user_strings_are_text_never_atoms() -> None:
    filters = MessageFilter(from_="a\r\nA1 CREATE x", subject="{5+}", text="()")
    criteria = search_criteria(filters, None)
    texts = [c for c in criteria if isinstance(c, Text)]
    assert texts == ["a\r\nA1 CREATE x", "{5+}", "()"]
    assert [c for c in criteria if not isinstance(c, Text)] == ["FROM", "SUBJECT", "TEXT"]


def test_dates() -> None:
    day = datetime(2024, 2, 1, 10, 0, tzinfo=UTC)
    assert search_criteria(MessageFilter(since=day, before=day), None) == [
        "SINCE",
        "1-Feb-2024",
        "BEFORE",
        "2-Feb-2024",
    ]
    far = MessageFilter(
        since=datetime(1, 1, 1, tzinfo=UTC), before=datetime(9999, 12, 31, 12, tzinfo=UTC)
    )
    assert search_criteria(far, None) == ["ALL"]  # bounds beyond any arrival time
    assert search_criteria(MessageFilter(), 10) == ["UID", "1:9"]
