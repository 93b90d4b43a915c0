"""Message filters to IMAP SEARCH criteria (RFC 3501 section 6.4.4)."""

from __future__ import annotations

from datetime import date, datetime

from mailgate.domain.mail import MessageFilter


def search_criteria(filters: MessageFilter, below_uid: int | None) -> list[object]:
    """Criteria for imapclient's ``search``; strings are sent as literals, so any text is safe.

    ``since``/``before`` compare the arrival day (IMAP SINCE/BEFORE have day granularity);
    ``before`` is exclusive of its own day unless the time is past midnight.
    """
    criteria: list[object] = []
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
            criteria.extend([key, value])
    if filters.since is not None:
        criteria.extend(["SINCE", _day(filters.since)])
    if filters.before is not None:
        day = _day(filters.before)
        if filters.before.time() != datetime.min.time():
            day = date.fromordinal(day.toordinal() + 1)
        criteria.extend(["BEFORE", day])
    if below_uid is not None:
        criteria.extend(["UID", f"1:{max(below_uid - 1, 1)}"])
    return criteria or ["ALL"]


def _day(value: datetime) -> date:
    return value.date()


def needs_utf8(filters: MessageFilter) -> bool:
    texts = (filters.from_, filters.to, filters.subject, filters.text)
    return any(t and not t.isascii() for t in texts)
