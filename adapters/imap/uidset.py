"""UID sets as compact IMAP sequence-set text ("1:40,42,50:77"), to store which messages a
folder held at the last watch round."""

from __future__ import annotations

from collections.abc import Iterable


def encode(uids: Iterable[int]) -> str:
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start: int | None = None
    previous = 0
    for uid in ordered:
        if start is not None and uid == previous + 1:
            previous = uid
            continue
        if start is not None:
            ranges.append(_range(start, previous))
        start = previous = uid
    if start is not None:
        ranges.append(_range(start, previous))
    return ",".join(ranges)


def decode(text: str) -> set[int]:
    uids: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition(":")
        uids.update(range(int(low), int(high or low) + 1))
    return uids


def _range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}:{end}"
