"""Folder ids, message ids and cursors: opaque, URL-safe, exact round trips, forgery-proof."""

from __future__ import annotations

import random
import string

import pytest

from mailgate.domain.ids import (
    Cursor,
    MessageLocation,
    filter_fingerprint,
    folder_id,
    folder_path,
    message_id,
    message_location,
)

URL_SAFE = set(string.ascii_letters + string.digits + "-_")
PATHS = ["INBOX", "Archive/2024", "Straße/Übersicht", "a%b/c d", "日本語", "INBOX.Sent", "x" * 300]


@pytest.mark.parametrize("path", PATHS)
def test_folder_ids_round_trip_and_are_url_safe(path: str) -> None:
    value = folder_id(path)
    assert value.startswith("fld_") and set(value[4:]) <= URL_SAFE
    assert folder_path(value) == path


@pytest.mark.parametrize("path", PATHS)
def test_message_ids_round_trip(path: str) -> None:
    location = MessageLocation(path, 1700000000, 4294967295)
    value = message_id(location, "acc")
    assert set(value[4:]) <= URL_SAFE
    assert message_location(value, "acc") == location
    assert message_location(value, "other") is None


def test_ids_differ_by_uidvalidity_and_uid() -> None:
    ids = {message_id(MessageLocation("INBOX", v, u), "acc") for v in (1, 2) for u in (1, 2, 3)}
    assert len(ids) == 6


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "msg_",
        "msg_AAAA",
        "fld_",
        "msg_!!!!",
        "nope",
        "msg_" + "A" * 5000,
        message_id(MessageLocation("INBOX", 1, 1), "acc") + "A",
        message_id(MessageLocation("INBOX", 1, 1), "acc")[:-2],
        "msg_AAAAAAAAAAAAAAAAAAA",
        folder_id("INBOX"),
    ],
)
def test_forged_or_truncated_message_ids_do_not_resolve(bad: str) -> None:
    assert message_location(bad, "acc") is None


def test_random_strings_never_resolve_or_raise() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_=+/%"
    for _ in range(2000):
        value = "msg_" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        location = message_location(value, "acc")
        assert location is None or message_id(location, "acc") == value
        folder_path("fld_" + value[4:])


def test_cursor_round_trip_and_garbage() -> None:
    cursor = Cursor("INBOX/Ä", 77, 1234, filter_fingerprint({"unread": True}))
    assert Cursor.decode(cursor.encode()) == cursor
    assert set(cursor.encode()) <= URL_SAFE
    for bad in ["", "x", "e30", cursor.encode()[:-3], "W10", "WzEsMiwzLDRd"]:
        assert Cursor.decode(bad) is None


def test_filter_fingerprint_is_order_independent() -> None:
    assert filter_fingerprint({"a": 1, "b": 2}) == filter_fingerprint({"b": 2, "a": 1})
    assert filter_fingerprint({"a": 1}) != filter_fingerprint({"a": 2})
