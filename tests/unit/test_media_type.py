"""A streamed answer's media type: its own, or application/octet-stream for a client that
accepts only that."""

from __future__ import annotations

import pytest

from mailgate.api.routes.messages import _media_type


@pytest.mark.parametrize(
    ("accept", "served"),
    [
        (None, "message/rfc822"),
        ("*/*", "message/rfc822"),
        ("message/rfc822", "message/rfc822"),
        ("application/octet-stream", "application/octet-stream"),
        ("application/octet-stream;q=1, */*;q=0.1", "message/rfc822"),
        ("application/octet-stream, message/*", "message/rfc822"),
        ("Application/Octet-Stream", "application/octet-stream"),
        ("application/json", "message/rfc822"),  # nothing acceptable: its own type, not 406
    ],
)
def test_media_type(accept: str | None, served: str) -> None:
    assert _media_type(accept, "message/rfc822") == served
