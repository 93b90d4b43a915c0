"""A small Server-Sent Events reader for the tests (WHATWG HTML section 9.2.6, the parts
Mailgate sends: id, event, data, comments)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Sse:
    event: str
    id: str
    data: Any  # the JSON; None for a comment
    comment: str = ""


def read_events(response: httpx.Response) -> Iterator[Sse]:
    """Events and comments as they come (a comment as event ``:``)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                yield Sse(
                    fields.get("event", "message"), fields.get("id", ""), json.loads(fields["data"])
                )
            fields = {}
        elif line.startswith(":"):
            yield Sse(":", "", None, line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def take(events: Iterator[Sse], count: int, *, comments: bool = False) -> list[Sse]:
    """The next ``count`` events of ``read_events`` (comments skipped unless asked for)."""
    got: list[Sse] = []
    for event in events:
        if event.event == ":" and not comments:
            continue
        got.append(event)
        if len(got) == count:
            break
    return got
