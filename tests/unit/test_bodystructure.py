"""Unit tests for adapters.imap.bodystructure.

Every structure is a BODYSTRUCTURE response line as a server (mostly Dovecot) writes it, run
through imapclient's own FETCH parser, so the tests see exactly what the library yields.
"""

from __future__ import annotations

import pytest
from imapclient.response_parser import parse_fetch_response
from imapclient.response_types import BodyData

from mailgate.adapters.imap.bodystructure import (
    PartInfo,
    find_part,
    first_text_part,
    has_attachments,
    iter_parts,
)


def parse(structure: str | bytes, *literals: bytes) -> BodyData:
    """``structure`` as the BODYSTRUCTURE of a ``* 1 FETCH (UID 5 ...)`` line.

    With ``literals``, each ``{}`` in ``structure`` becomes an IMAP literal ``{n}`` and the
    line is split the way imaplib hands literals to imapclient: ``[(head, literal), tail]``.
    """
    line = b"1 (UID 5 BODYSTRUCTURE " + (
        structure.encode() if isinstance(structure, str) else structure
    )
    line += b")"
    if not literals:
        data: list[bytes | tuple[bytes, bytes]] = [line]
    else:
        pieces = line.split(b"{}")
        assert len(pieces) == len(literals) + 1
        data = []
        for piece, literal in zip(pieces, literals, strict=False):
            data.append((piece + b"{%d}" % len(literal), literal))
        data.append(pieces[-1])
    parsed = parse_fetch_response(data)
    value = parsed[5][b"BODYSTRUCTURE"]
    assert isinstance(value, BodyData)
    return value


def ids(structure: object) -> list[str]:
    return [part.part_id for part in iter_parts(structure)]


SINGLE_TEXT = (
    '("TEXT" "PLAIN" ("CHARSET" "UTF-8" "FORMAT" "flowed") NIL NIL "QUOTED-PRINTABLE"'
    " 1234 30 NIL NIL NIL NIL)"
)

# Dovecot, for stdlib EmailMessage: alternative (plain, html) plus an RFC 2231 PDF.
ALTERNATIVE_IN_MIXED = (
    '((("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 10 1 NIL NIL NIL NIL)'
    '("text" "html" ("charset" "utf-8") NIL NIL "8bit" 16 1 NIL NIL NIL NIL)'
    ' "alternative" ("boundary" "===============9087583282721668578==") NIL NIL NIL)'
    '("application" "pdf" NIL NIL NIL "base64" 18 NIL'
    ' ("attachment" ("filename*" "utf-8\'\'R%C3%A9sum%C3%A9.pdf")) NIL NIL)'
    ' "mixed" ("boundary" "===============5360712454112659844==") NIL NIL NIL)'
)

# RFC 2231 §3-4 continuations with a charset, as a Thunderbird-style long name.
MIXED_PDF_CONTINUED = (
    '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 120 4 NIL NIL NIL NIL)'
    '("application" "pdf" ("name" "Quarterly Report.pdf") NIL "The report" "base64" 68420 NIL'
    ' ("attachment" ("filename*0*" "utf-8\'\'Quarterly%20R%C3%A9"'
    ' "filename*1*" "port%20%E2%80%93%20Q3" "filename*2" ".pdf" "size" "50000")) NIL NIL)'
    ' "mixed" ("boundary" "b1") NIL NIL NIL)'
)

# The brief's example: html alternative and an inline cid image inside multipart/related.
RELATED_CID = (
    '((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)'
    '("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 40 2 NIL NIL NIL NIL)'
    ' "alternative" ("boundary" "b2") NIL NIL NIL)'
    '("image" "png" ("name" "a.png") "<img1@x>" NIL "base64" 100 NIL'
    ' ("inline" ("filename" "a.png")) NIL NIL) "related" ("boundary" "b1") NIL NIL NIL)'
)

# Dovecot: mixed(related(html, cid png), message/rfc822(mixed(text, h.bin))).
WITH_MESSAGE = (
    '((("text" "html" ("charset" "utf-8") NIL NIL "7bit" 34 1 NIL NIL NIL NIL)'
    '("image" "png" NIL "<img1@x>" NIL "base64" 14 NIL ("inline" NIL) NIL NIL)'
    ' "related" ("boundary" "===============6960181874035885370==") NIL NIL NIL)'
    '("message" "rfc822" NIL NIL NIL "8bit" 567'
    ' (NIL "Inner =?utf-8?q?=C3=BC?=" (("Ann" NIL "ann" "example.org"))'
    ' (("Ann" NIL "ann" "example.org")) (("Ann" NIL "ann" "example.org"))'
    ' ((NIL NIL "bob" "example.org")) NIL NIL NIL NIL)'
    ' (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)'
    '("application" "octet-stream" NIL NIL NIL "base64" 18 NIL'
    ' ("attachment" ("filename" "h.bin")) NIL NIL)'
    ' "mixed" ("boundary" "===============3719403013257151160==") NIL NIL NIL)'
    ' 21 NIL ("attachment" NIL) NIL NIL)'
    ' "mixed" ("boundary" "===============2688433267060535783==") NIL NIL NIL)'
)

ENVELOPE = (
    '("Mon, 7 Feb 1994 21:52:25 -0800" "Fwd" (("A" NIL "a" "x.org")) (("A" NIL "a" "x.org"))'
    ' (("A" NIL "a" "x.org")) ((NIL NIL "b" "x.org")) NIL NIL NIL "<m1@x.org>")'
)


def test_single_part_text_is_part_one() -> None:
    structure = parse(SINGLE_TEXT)
    assert not structure.is_multipart
    expected = PartInfo(
        part_id="1",
        content_type="text/plain",
        encoding="quoted-printable",
        size=1234,
        charset="utf-8",
        filename=None,
        disposition=None,
        content_id=None,
    )
    assert iter_parts(structure) == [expected]
    assert find_part(structure, "1") == expected
    assert find_part(structure, "2") is None
    assert find_part(structure, "1.1") is None
    assert first_text_part(structure) == expected
    assert has_attachments(structure) is False


def test_alternative_inside_mixed_with_rfc2231_filename() -> None:
    structure = parse(ALTERNATIVE_IN_MIXED)
    parts = iter_parts(structure)
    assert [(p.part_id, p.content_type, p.encoding, p.size) for p in parts] == [
        ("1.1", "text/plain", "8bit", 10),
        ("1.2", "text/html", "8bit", 16),
        ("2", "application/pdf", "base64", 18),
    ]
    pdf = parts[2]
    assert pdf.filename == "Résumé.pdf"
    assert pdf.disposition == "attachment"
    assert pdf.charset is None
    assert find_part(structure, "2") == pdf
    assert find_part(structure, "1.2") == parts[1]
    assert find_part(structure, "1") is None  # multipart/alternative: a container
    assert find_part(structure, "3") is None
    assert find_part(structure, "1.3") is None
    assert has_attachments(structure) is True
    assert first_text_part(structure) == parts[0]


def test_rfc2231_continuations_beat_content_type_name() -> None:
    structure = parse(MIXED_PDF_CONTINUED)
    text, pdf = iter_parts(structure)
    assert text.charset == "us-ascii"
    assert pdf.filename == "Quarterly Réport \u2013 Q3.pdf"
    assert pdf.size == 68420
    assert has_attachments(structure)


def test_related_with_cid_image_has_no_attachment() -> None:
    structure = parse(RELATED_CID)
    parts = iter_parts(structure)
    assert ids(structure) == ["1.1", "1.2", "2"]
    image = parts[2]
    assert image == PartInfo(
        part_id="2",
        content_type="image/png",
        encoding="base64",
        size=100,
        charset=None,
        filename="a.png",
        disposition="inline",
        content_id="img1@x",
    )
    assert has_attachments(structure) is False
    assert first_text_part(structure) == parts[0]


def test_message_rfc822_is_a_leaf_and_find_part_resolves_inside() -> None:
    structure = parse(WITH_MESSAGE)
    parts = iter_parts(structure)
    assert [(p.part_id, p.content_type) for p in parts] == [
        ("1.1", "text/html"),
        ("1.2", "image/png"),
        ("2", "message/rfc822"),
    ]
    message = parts[2]
    assert (message.encoding, message.size, message.disposition) == ("8bit", 567, "attachment")
    assert find_part(structure, "2") == message
    inner_text = find_part(structure, "2.1")
    inner_bin = find_part(structure, "2.2")
    assert inner_text is not None and inner_bin is not None
    assert (inner_text.part_id, inner_text.content_type, inner_text.size) == (
        "2.1",
        "text/plain",
        12,
    )
    assert (inner_bin.content_type, inner_bin.filename, inner_bin.disposition) == (
        "application/octet-stream",
        "h.bin",
        "attachment",
    )
    assert find_part(structure, "2.3") is None
    assert find_part(structure, "2.1.1") is None
    assert find_part(structure, "1.2") == parts[1]
    assert parts[1].content_id == "img1@x"
    assert has_attachments(structure) is True  # the message, not the cid image
    assert first_text_part(structure) == parts[0]  # no text/plain: the html


def test_message_rfc822_with_single_part_body_and_nested_message() -> None:
    nested = (
        f'("message" "rfc822" NIL NIL NIL "7bit" 300 {ENVELOPE}'
        ' ("text" "plain" ("charset" "iso-8859-1") NIL NIL "quoted-printable" 20 2'
        " NIL NIL NIL NIL) 12 NIL NIL NIL NIL)"
    )
    structure = parse(
        '(("text" "plain" NIL NIL NIL "7bit" 5 1 NIL NIL NIL NIL)'
        f'("message" "rfc822" NIL NIL NIL "7bit" 900 {ENVELOPE}'
        ' ("application" "x-thing" NIL NIL NIL "7bit" 1 NIL NIL NIL NIL)'
        " 30 NIL NIL NIL NIL)"
        f'("message" "rfc822" ("name" "fwd.eml") NIL NIL "7bit" 700 {ENVELOPE}'
        f' (("text" "plain" NIL NIL NIL "7bit" 5 1 NIL NIL NIL NIL){nested} "mixed"'
        ' ("boundary" "x") NIL NIL NIL) 25 NIL NIL NIL NIL) "mixed" ("boundary" "y") NIL NIL NIL)'
    )
    assert ids(structure) == ["1", "2", "3"]
    assert iter_parts(structure)[2].filename == "fwd.eml"
    inner = find_part(structure, "2.1")
    assert inner is not None and inner.content_type == "application/x-thing"
    assert find_part(structure, "2.2") is None
    assert find_part(structure, "3.1") is not None
    deep_message = find_part(structure, "3.2")
    assert deep_message is not None and deep_message.content_type == "message/rfc822"
    deepest = find_part(structure, "3.2.1")
    assert deepest is not None
    assert (deepest.part_id, deepest.charset, deepest.encoding, deepest.size) == (
        "3.2.1",
        "iso-8859-1",
        "quoted-printable",
        20,
    )
    assert find_part(structure, "3.2.2") is None
    assert has_attachments(structure) is True


def test_whole_message_is_message_rfc822() -> None:
    structure = parse(
        f'("message" "rfc822" NIL NIL NIL "7bit" 300 {ENVELOPE}'
        ' ("text" "plain" NIL NIL NIL "7bit" 20 2 NIL NIL NIL NIL) 12 NIL NIL NIL NIL)'
    )
    assert ids(structure) == ["1"]
    inner = find_part(structure, "1.1")
    assert inner is not None and (inner.content_type, inner.size) == ("text/plain", 20)
    assert first_text_part(structure) is None
    assert has_attachments(structure) is True


def test_attachment_named_only_by_content_type() -> None:
    structure = parse(
        '(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'
        '("application" "vnd.ms-excel" ("name" "report.xls") NIL NIL "base64" 2048 NIL'
        ' NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)'
    )
    sheet = find_part(structure, "2")
    assert sheet is not None
    assert (sheet.filename, sheet.disposition) == ("report.xls", None)
    assert has_attachments(structure) is True


def test_zero_size_part_and_empty_attachment() -> None:
    structure = parse(
        '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
        '("application" "octet-stream" NIL NIL NIL "base64" 0 NIL'
        ' ("attachment" ("filename" "empty.bin")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)'
    )
    text, empty = iter_parts(structure)
    assert (text.size, empty.size, empty.filename) == (0, 0, "empty.bin")
    assert first_text_part(structure) == text


def test_rfc2047_names_are_decoded() -> None:
    structure = parse(
        '(("text" "plain" NIL NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'
        '("application" "pdf" ("name" "=?UTF-8?B?UsOpc3Vtw6kucGRm?=") NIL NIL "base64" 10 NIL'
        " NIL NIL NIL)"
        '("application" "pdf" ("name" "ignored.pdf") NIL NIL "base64" 10 NIL'
        ' ("ATTACHMENT" ("FILENAME" "=?iso-8859-1?Q?=DCbersicht_M=E4rz.pdf?=")) NIL NIL)'
        ' "mixed" ("boundary" "b") NIL NIL NIL)'
    )
    _, by_name, by_disposition = iter_parts(structure)
    assert by_name.filename == "Résumé.pdf"
    assert by_disposition.filename == "Übersicht März.pdf"
    assert by_disposition.disposition == "attachment"


def test_raw_utf8_filename_in_a_literal() -> None:
    structure = parse(
        '("application" "pdf" NIL NIL NIL "base64" 10 NIL ("attachment" ("filename" {})) NIL NIL)',
        "Résumé €.pdf".encode(),
    )
    assert [part.filename for part in iter_parts(structure)] == ["Résumé €.pdf"]


def test_rfc2231_with_unknown_charset_and_bad_percent_does_not_raise() -> None:
    structure = parse(
        '("application" "pdf" NIL NIL NIL "base64" 10 NIL'
        ' ("attachment" ("filename*" "x-unknown\'\'a%ZZb%E9.pdf")) NIL NIL)'
    )
    (part,) = iter_parts(structure)
    assert part.filename is not None and part.filename.startswith("a%ZZb")


def test_attachment_disposition_inside_related_counts() -> None:
    structure = parse(
        '(("text" "html" NIL NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'
        '("image" "jpeg" NIL "<c1>" NIL "base64" 10 NIL ("attachment" ("filename" "p.jpg"))'
        ' NIL NIL) "related" NIL NIL NIL NIL)'
    )
    assert has_attachments(structure) is True


def test_related_image_without_cid_counts() -> None:
    structure = parse(
        '(("text" "html" NIL NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'
        '("image" "jpeg" NIL NIL NIL "base64" 10 NIL NIL NIL NIL) "related" NIL NIL NIL NIL)'
    )
    assert has_attachments(structure) is True


def test_inline_image_in_mixed_counts_and_text_attachment_is_no_body() -> None:
    structure = parse(
        '(("text" "plain" NIL NIL NIL "7bit" 3 1 NIL ("attachment" ("filename" "a.txt"))'
        ' NIL NIL)("text" "plain" NIL NIL NIL "7bit" 3 1 NIL ("inline" ("filename" "b.txt"))'
        ' NIL NIL)("text" "html" NIL NIL NIL "7bit" 3 1 NIL ("inline" NIL) NIL NIL)'
        '("image" "gif" NIL NIL NIL "base64" 10 NIL ("inline" NIL) NIL NIL)'
        ' "mixed" NIL NIL NIL NIL)'
    )
    first = first_text_part(structure)
    assert first is not None and first.part_id == "3"
    assert has_attachments(structure) is True


def test_text_only_attachments_means_no_preview_part() -> None:
    structure = parse(
        '("text" "plain" NIL NIL NIL "7bit" 3 1 NIL ("attachment" ("filename" "a.txt")) NIL NIL)'
    )
    assert first_text_part(structure) is None
    assert has_attachments(structure) is True


def test_body_without_extension_data() -> None:
    """FETCH BODY (not BODYSTRUCTURE) omits the extension fields (RFC 3501 §7.4.2)."""
    line = (
        b'1 (UID 5 BODY (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 3 1)'
        b'("image" "png" ("name" "x.png") "<c>" NIL "base64" 10) "related"))'
    )
    structure = parse_fetch_response([line])[5][b"BODY"]
    parts = iter_parts(structure)
    assert [(p.part_id, p.filename, p.disposition, p.content_id) for p in parts] == [
        ("1", None, None, None),
        ("2", "x.png", None, "c"),
    ]
    assert has_attachments(structure) is False


def test_multipart_signed_and_single_child_multipart() -> None:
    structure = parse(
        '((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'
        ' "mixed" ("boundary" "in") NIL NIL NIL)'
        '("application" "pgp-signature" ("name" "signature.asc") NIL NIL "7bit" 488 NIL'
        ' ("attachment" ("filename" "signature.asc")) NIL NIL)'
        ' "signed" ("micalg" "pgp-sha256" "protocol" "application/pgp-signature") NIL NIL NIL)'
    )
    assert ids(structure) == ["1.1", "2"]
    first = first_text_part(structure)
    assert first is not None and first.part_id == "1.1"


def test_deep_nesting_is_numbered() -> None:
    depth = 8
    structure = parse(
        "(" * depth
        + '"text" "plain" NIL NIL NIL "7bit" 1 1 NIL NIL NIL NIL)'
        + ' "mixed" NIL NIL NIL NIL)' * (depth - 1)
    )
    assert ids(structure) == [".".join(["1"] * (depth - 1))]
    assert find_part(structure, ".".join(["1"] * (depth - 1))) is not None


@pytest.mark.parametrize(
    "structure",
    [
        None,
        (),
        [],
        b"",
        b"text",
        42,
        "text/plain",
        (None,),
        (b"text",),
        ([],),
        ([], b"mixed"),
        ([b"junk", 3, None], b"mixed"),
        ([(b"text",)], b"mixed"),
        ((None, None, None),),
        (b"message", b"rfc822", None, None, None, b"7bit", 10, None, b"garbage", 3),
        (b"message", b"rfc822", None, None, None, b"7bit", 10, (), (), 3, None, 17, None),
        (b"text", b"plain", (b"charset",), 5, 6, 7, b"x", None, None, (None, 3), None),
        (b"text", b"plain", b"notalist", None, None, None, None, None, None, (b"x", b"y")),
        (b"image", b"png", None, None, None, b"base64", -5, None, ((b"a",), (b"b", 1))),
        ([([([],)],)], None, None),
        {"a": 1},
    ],
)
def test_malformed_structures_never_raise(structure: object) -> None:
    parts = iter_parts(structure)
    assert isinstance(parts, list)
    assert all(isinstance(part, PartInfo) for part in parts)
    assert all(part.size >= 0 for part in parts)
    for part_id in ("1", "1.1", "2", "1.1.1"):
        found = find_part(structure, part_id)
        assert found is None or isinstance(found, PartInfo)
    assert has_attachments(structure) in (True, False)
    first = first_text_part(structure)
    assert first is None or isinstance(first, PartInfo)


@pytest.mark.parametrize("part_id", ["", "0", "0.1", "1.0", "a", "1..2", "-1", ".1", "1.", "¹"])
def test_bad_part_ids(part_id: str) -> None:
    structure = parse(WITH_MESSAGE)
    assert find_part(structure, part_id) is None


def test_non_string_part_id() -> None:
    assert find_part(parse(SINGLE_TEXT), None) is None  # type: ignore[arg-type]
    assert find_part(parse(SINGLE_TEXT), " 1 ") is not None


def test_very_deep_structure_does_not_raise() -> None:
    node: object = (b"text", b"plain", None, None, None, b"7bit", 1, 1)
    for _ in range(5000):
        node = ([node], b"mixed", None, None, None, None)
    assert iter_parts(node) == []
    assert find_part(node, ".".join(["1"] * 5001)) is None
    assert has_attachments(node) is False
