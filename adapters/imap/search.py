"""Message filters to IMAP SEARCH criteria (RFC 3501 section 6.4.4).

Every string a user gives goes out as a literal (``{n}`` and its bytes, RFC 3501 section
4.3), never as an atom or a quoted string: whatever it holds (CR, LF, ``{5+}``, quotes,
parentheses, 8-bit bytes) is data, and cannot end the command or start another.
"""

from __future__ import annotations

from datetime import date, datetime

from mailgate.domain.mail import MessageFilter

EARLIEST = date(1970, 1, 1)
LATEST = date(2100, 1, 1)


class Text(str):
    """A user-supplied search string: sent as a literal (adapters.imap.wire.search)."""


def search_criteria(filters: MessageFilter, below_uid: int | None) -> list[str]:
    """The criteria, each a keyword, a date, a UID set or a :class:`Text`.

    ``since``/``before`` compare the arrival day (IMAP SINCE/BEFORE have day granularity);
    ``before`` is exclusive of its own day unless the time is past midnight.
    """
    criteria: list[str] = []
    if filters.unread is not None:
        criteria.append("UNSEEN" if filters.unread else "SEEN")
    if filters.flagged is not None:
        criteria.append("FLAGGED" if filters.flagged else "UNFLAGGED")
    for key, value in (
        ("FROM", filters.from_),
        ("TO", filters.to),
        ("SUBJECT", filters.subject),
        ("TEXT", filters.text),
    ):
        if value:
            criteria.extend([key, Text(value)])
    # Servers refuse dates outside what their clocks hold (Cyrus: "Invalid date" for year 1);
    # no arrival time lies outside these, so a bound beyond them bounds nothing.
    if filters.since is not None and _day(filters.since) > EARLIEST:
        criteria.extend(["SINCE", _imap_date(_day(filters.since))])
    if filters.before is not None:
        day = _day(filters.before)
        if filters.before.time() != datetime.min.time():
            day = date.max if day == date.max else date.fromordinal(day.toordinal() + 1)
        if day <= LATEST:
            criteria.extend(["BEFORE", _imap_date(day)])
    if below_uid is not None:
        criteria.extend(["UID", f"1:{max(below_uid - 1, 1)}"])
    return criteria or ["ALL"]


def _day(value: datetime) -> date:
    return value.date()


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _imap_date(day: date) -> str:
    """RFC 3501 date: ``1-Feb-2024`` (English month names whatever the locale)."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year:04d}"


def needs_utf8(filters: MessageFilter) -> bool:
    texts = (filters.from_, filters.to, filters.subject, filters.text)
    return any(t and not t.isascii() for t in texts)
