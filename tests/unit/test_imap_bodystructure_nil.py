"""NIL where RFC 3501 section 9 wants a string, in BODYSTRUCTURE and in the ENVELOPE of a
message/rfc822 part: adapters.imap.bodystructure never raises and reads what is there.

Each structure is parsed the way the list path parses it (adapters.imap.wire.fetch_answers,
which keeps the raw tuple where imapclient's BodyData.create cannot shape it), and, where
imapclient can, the way imapclient's own fetch does. The live counterpart, with a real
Dovecot answer rewritten by the proxy: tests/test_imap_quirks.py.
"""

from __future__ import annotations

import contextlib

import pytest
from imapclient.response_parser import parse_fetch_response

from mailgate.adapters.imap import wire
from mailgate.adapters.imap.bodystructure import (
    find_part,
    first_text_part,
    has_attachments,
    iter_parts,
)

PDF = (
    '("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 18 NIL'
    ' ("attachment" ("filename" "r.pdf")) NIL NIL)'
)
TEXT = '("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)'
ENVELOPE = (
    '("Tue, 1 May 2024 12:00:00 +0000" "Inner" (("Ann" NIL "ann" "example.org"))'
    ' (("Ann" NIL "ann" "example.org")) (("Ann" NIL "ann" "example.org"))'
    ' ((NIL NIL "bob" "example.org")) NIL NIL NIL "<i@x>")'
)


def rfc822(envelope: str) -> str:
    """A message/rfc822 part (envelope, body, lines) holding a text and a PDF."""
    return (
        f'("message" "rfc822" NIL NIL NIL "7bit" 400 {envelope} ({TEXT} {PDF} "mixed") 20'
        " NIL NIL NIL NIL)"
    )


def structures(structure: str) -> list[object]:
    """``structure`` as the list path reads it, and as imapclient's fetch does (if it can)."""
    line = b"1 (UID 5 BODYSTRUCTURE " + structure.encode() + b")"
    [answer] = wire.fetch_answers([line])
    shapes = [answer[b"BODYSTRUCTURE"]]
    with contextlib.suppress(TypeError):  # imapclient cannot: the list path keeps the raw tuple
        shapes.append(parse_fetch_response([line])[5][b"BODYSTRUCTURE"])
    return shapes


NIL_ADDRESSES = "(NIL NIL ((NIL NIL NIL NIL)) NIL NIL NIL NIL NIL NIL NIL)"
NIL_CASES = {
    "type and subtype": "(NIL NIL NIL NIL NIL NIL 10 NIL NIL NIL NIL)",
    "encoding": '("text" "plain" ("charset" "utf-8") NIL NIL NIL 12 1 NIL NIL NIL NIL)',
    "size": '("text" "plain" NIL NIL NIL "7bit" NIL NIL NIL NIL NIL NIL)',
    "parameter value": '("application" "pdf" ("name" NIL) NIL NIL "base64" 18 NIL'
    ' ("attachment" ("filename" NIL)) NIL NIL)',
    "parameter list of one": '("text" "plain" ("charset") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)',
    "disposition type": '("application" "pdf" NIL NIL NIL "base64" 18 NIL (NIL NIL) NIL NIL)',
    "multipart subtype": f"({TEXT} {PDF} NIL NIL NIL NIL NIL)",
    "a whole part": f'({TEXT} NIL {PDF} "mixed")',
    "everything": "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "the envelope": f'({TEXT} {rfc822("NIL")} "mixed")',
    "envelope strings": f'({TEXT} {rfc822("(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")} "mixed")',
    "envelope addresses": f'({TEXT} {rfc822(NIL_ADDRESSES)} "mixed")',
}


@pytest.mark.parametrize("structure", NIL_CASES.values(), ids=NIL_CASES.keys())
def test_nil_anywhere_never_raises(structure: str) -> None:
    for shape in structures(structure):
        parts = iter_parts(shape)
        has_attachments(shape)
        first_text_part(shape)
        for part in parts:
            assert find_part(shape, part.part_id) == part
        find_part(shape, "2.1")


def test_nil_type_reads_as_octet_stream_with_its_size() -> None:
    for shape in structures(NIL_CASES["type and subtype"]):
        [part] = iter_parts(shape)
        assert (part.content_type, part.encoding, part.size) == (
            "application/octet-stream",
            "7bit",
            10,
        )


def test_nil_encoding_and_size_read_as_7bit_and_0() -> None:
    for shape in structures(NIL_CASES["size"]):
        [part] = iter_parts(shape)
        assert (part.content_type, part.size) == ("text/plain", 0)
    for shape in structures(NIL_CASES["encoding"]):
        assert [p.encoding for p in iter_parts(shape)] == ["7bit"]


def test_nil_multipart_subtype_still_finds_the_attachment() -> None:
    for shape in structures(NIL_CASES["multipart subtype"]):
        assert [p.part_id for p in iter_parts(shape)] == ["1", "2"]
        assert has_attachments(shape)
        part = find_part(shape, "2")
        assert part is not None and part.filename == "r.pdf"


def test_a_nil_part_ends_the_parts_before_it_stay() -> None:
    """Where a part should be, NIL: imapclient itself cannot shape this; the parts before it
    are read, the rest of the list is taken for the multipart's extension fields."""
    [shape] = structures(NIL_CASES["a whole part"])
    assert [p.content_type for p in iter_parts(shape)] == ["text/plain"]


def test_a_nil_envelope_makes_the_message_part_a_leaf() -> None:
    for shape in structures(NIL_CASES["the envelope"]):
        assert [p.content_type for p in iter_parts(shape)] == ["text/plain", "message/rfc822"]
        assert find_part(shape, "2.1") is None  # nothing inside to reach without a structure


def test_nil_envelope_strings_leave_the_inner_parts_reachable() -> None:
    for case in ("envelope strings", "envelope addresses"):
        for shape in structures(NIL_CASES[case]):
            inner = find_part(shape, "2.2")
            assert inner is not None and inner.filename == "r.pdf"
