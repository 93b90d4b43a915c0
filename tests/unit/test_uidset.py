import pytest

from mailgate.adapters.imap.uidset import decode, encode


@pytest.mark.parametrize(
    ("uids", "text"),
    [
        ([], ""),
        ([7], "7"),
        ([1, 2, 3, 5], "1:3,5"),
        ([9, 1, 2, 2, 10, 4], "1:2,4,9:10"),
    ],
)
def test_encode_makes_ranges(uids: list[int], text: str) -> None:
    assert encode(uids) == text


def test_decode_reverses_encode() -> None:
    uids = {1, 2, 3, 17, 18, 40, 4_000_000_000}
    assert decode(encode(uids)) == uids
    assert decode("") == set()
