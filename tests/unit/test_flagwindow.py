"""The flag digests a watcher compares on servers without CONDSTORE."""

from __future__ import annotations

from mailgate.adapters.imap import flagwindow


def test_digest_ignores_order_case_and_recent() -> None:
    one = flagwindow.digest([b"\\Seen", b"$Label1"])
    assert one == flagwindow.digest([b"$label1", b"\\SEEN", b"\\Recent"])
    assert one != flagwindow.digest([b"\\Seen"])
    assert flagwindow.digest([]) == flagwindow.digest([b"\\Recent"])


def test_changed_is_only_what_differs_among_known_messages() -> None:
    before = {1: 10, 2: 20, 3: 30}
    now = {2: 21, 3: 30, 4: 40}  # 1 gone, 2 re-flagged, 3 the same, 4 new
    assert flagwindow.changed(before, now) == {2: 21}


def test_window_is_the_newest_and_round_trips() -> None:
    assert flagwindow.window(range(1, 2000))[0] == 2000 - flagwindow.WINDOW
    found = {5: 123, 7: 456}
    assert flagwindow.decode(flagwindow.encode(found)) == found
    assert flagwindow.decode(None) == {} and flagwindow.decode("not json") == {}
