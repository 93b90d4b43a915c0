"""Unit tests for the pure MIME layer (adapters.mime).

Every message is built here as raw bytes, the way a server would hand it over, and the
assertions check what an API user would see.
"""

from __future__ import annotations

import base64
import random
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailgate.adapters.mime import (
    HeaderSummary,
    ParsedMessage,
    find_part,
    html_to_text,
    make_preview,
    parse_message,
    parse_summary_headers,
)
from mailgate.domain.mail import AttachmentInfo, EmailAddress


def build(*lines: str | bytes, sep: bytes = b"\r\n") -> bytes:
    """Join header/body lines into raw message bytes (str lines are UTF-8 encoded)."""
    return sep.join(line.encode() if isinstance(line, str) else line for line in lines)


def simple(*headers: str | bytes, body: bytes = b"body") -> bytes:
    """A single-part message with the given header lines."""
    return build(*headers, b"", body)


def b64(text: str, charset: str = "utf-8") -> str:
    return base64.b64encode(text.encode(charset)).decode("ascii")


VALID = build(
    "From: Alice Example <alice@example.com>",
    "To: Bob <bob@example.com>, carol@example.com",
    "Subject: =?utf-8?q?Quarterly_r=C3=A9port?=",
    "Date: Tue, 02 Jan 2024 09:30:00 +0100",
    "Message-ID: <q1@example.com>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="outer"',
    "",
    "--outer",
    'Content-Type: multipart/alternative; boundary="alt"',
    "",
    "--alt",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Numbers are up =E2=80=94 see attached.",
    "--alt",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<p>Numbers are up &mdash; see <b>attached</b>.</p>",
    "--alt--",
    "--outer",
    'Content-Type: application/pdf; name="q.pdf"',
    'Content-Disposition: attachment; filename="q.pdf"',
    "Content-Transfer-Encoding: base64",
    "",
    base64.b64encode(b"%PDF-1.4 fake").decode(),
    "--outer--",
    "",
)


# --- RFC 2047 encoded words -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"=?UTF-8?B?{b64('Grüße aus Köln')}?=", "Grüße aus Köln"),
        ("=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème"),
        (f"=?iso-8859-1?b?{b64('Señor', 'latin-1')}?=", "Señor"),
        ("=?utf-8?q?Hello?= =?iso-8859-1?q?_w=F6rld?=", "Hello wörld"),
        ("=?UTF-8?B?w6k=?=\r\n =?UTF-8?B?w6k=?=", "éé"),
        ("=?utf-8?B?4oI=?= =?utf-8?B?rA==?=", "€"),  # one character split over two words
        ("Re: =?utf-8?q?caf=C3=A9?= time", "Re: café time"),
        ("=?UTF-8*en?Q?hi_there?=", "hi there"),
        ("=?utf-8?q?broken", "=?utf-8?q?broken"),
        ("Plain subject", "Plain subject"),
    ],
)
def test_rfc2047_subject(header: str, expected: str) -> None:
    msg = parse_message(simple(f"Subject: {header}"))
    assert msg.subject == expected


def test_rfc2047_display_names() -> None:
    andre = "=?iso-8859-1?q?Andr=E9?= <andre@example.fr>"
    jurgen = '"=?utf-8?q?J=C3=BCrgen?=" <j@example.de>'
    raw = simple(
        f"From: =?UTF-8?B?{b64('Zoë Ångström')}?= <zoe@example.com>",
        f"To: {andre}, {jurgen}",
        "Cc: =?utf-8?q?M=C3=BCller=2C?= =?utf-8?q?_Hans?= <hans@example.de>",
    )
    msg = parse_message(raw)
    assert msg.from_ == [EmailAddress(name="Zoë Ångström", email="zoe@example.com")]
    assert [(a.name, a.email) for a in msg.to] == [
        ("André", "andre@example.fr"),
        ("Jürgen", "j@example.de"),
    ]
    assert [(a.name, a.email) for a in msg.cc] == [("Müller, Hans", "hans@example.de")]


# --- RFC 2231 / name= file names ------------------------------------------------------------


def _attachment_message(*part_headers: str | bytes, payload: bytes = b"aGk=") -> bytes:
    return build(
        'Content-Type: multipart/mixed; boundary="b"',
        "",
        "--b",
        "Content-Type: text/plain",
        "",
        "see attachment",
        "--b",
        *part_headers,
        "",
        payload,
        "--b--",
        "",
    )


def test_rfc2231_filename_percent_encoded() -> None:
    raw = _attachment_message(
        "Content-Type: text/plain",
        "Content-Disposition: attachment; filename*=UTF-8''na%C3%AFve.txt",
    )
    [att] = parse_message(raw).attachments
    assert att.filename == "naïve.txt"
    assert att.id == "2"


def test_rfc2231_filename_continuations() -> None:
    raw = _attachment_message(
        "Content-Type: application/octet-stream",
        "Content-Disposition: attachment;",
        " filename*0*=UTF-8''na%C3%AF;",
        " filename*1*=ve%20quarterly%20;",
        " filename*2=report.bin",
    )
    assert parse_message(raw).attachments[0].filename == "naïve quarterly report.bin"


def test_rfc2231_latin1_filename() -> None:
    raw = _attachment_message(
        "Content-Type: application/pdf",
        "Content-Disposition: attachment; filename*=iso-8859-1'fr'r%E9sum%E9.pdf",
    )
    assert parse_message(raw).attachments[0].filename == "résumé.pdf"


def test_filename_only_in_content_type_name() -> None:
    raw = _attachment_message(
        'Content-Type: application/pdf; name="report.pdf"', "Content-Transfer-Encoding: base64"
    )
    [att] = parse_message(raw).attachments
    assert (att.filename, att.content_type, att.size) == ("report.pdf", "application/pdf", 2)


def test_filename_rfc2047_in_quoted_name_and_8bit() -> None:
    encoded = _attachment_message(
        f'Content-Type: application/pdf; name="=?UTF-8?B?{b64("Rapport été.pdf")}?="'
    )
    assert parse_message(encoded).attachments[0].filename == "Rapport été.pdf"
    latin1 = _attachment_message(b'Content-Type: application/pdf; name="caf\xe9.pdf"')
    assert parse_message(latin1).attachments[0].filename == "café.pdf"


def test_filename_directory_parts_removed() -> None:
    raw = _attachment_message(
        "Content-Type: application/octet-stream",
        'Content-Disposition: attachment; filename="..\\..\\evil/../passwd"',
    )
    assert parse_message(raw).attachments[0].filename == "passwd"


# --- Charsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ('text/plain; charset="x-unknown"', "Grüße".encode(), "Grüße"),
        ('text/plain; charset="x-unknown"', b"Gr\xfc\xdfe", "Grüße"),
        ("text/plain; charset=utf-8", b"Caf\xe9 cr\xe8me \x93quoted\x94", "Café crème “quoted”"),
        ("text/plain; charset=iso-8859-1", "déjà vu".encode(), "déjà vu"),
        ("text/plain; charset=us-ascii", "naïve".encode(), "naïve"),
        ("text/plain; charset=base64", b"plain", "plain"),
        ("text/plain; charset=windows-1252", b"\x80 5", "€ 5"),
        ("text/plain; charset=iso-2022-jp", "日本語".encode("iso-2022-jp"), "日本語"),
        ("text/plain; charset=gb2312", "中文".encode("gb2312"), "中文"),
        ("text/plain; charset=utf-8", b"\xef\xbb\xbfBOM first", "BOM first"),
    ],
)
def test_body_charset_fallbacks(content_type: str, body: bytes, expected: str) -> None:
    msg = parse_message(simple(f"Content-Type: {content_type}", body=body))
    assert msg.text == expected


def test_html_charset_from_meta_tag() -> None:
    body = '<html><head><meta charset="windows-1251"></head><body>Привет</body></html>'
    msg = parse_message(simple("Content-Type: text/html", body=body.encode("cp1251")))
    assert msg.html is not None and "Привет" in msg.html
    assert msg.preview == "Привет"


# --- 8-bit headers --------------------------------------------------------------------------


def test_raw_8bit_headers() -> None:
    raw = simple(
        "Subject: Caf\u00e9 na\u00efve \u2014 ok".encode(),
        b"From: Jos\xe9 Garc\xeda <jose@example.es>",
        "To: Zoë <zoe@example.com>".encode(),
    )
    msg = parse_message(raw)
    assert msg.subject == "Café naïve — ok"
    assert msg.from_ == [EmailAddress(name="José García", email="jose@example.es")]
    assert msg.to == [EmailAddress(name="Zoë", email="zoe@example.com")]
    summary = parse_summary_headers(raw)
    assert summary.subject == "Café naïve — ok"
    assert summary.from_[0].name == "José García"


# --- Structure ------------------------------------------------------------------------------


def test_no_content_type_is_plain_text() -> None:
    msg = parse_message(build("From: a@example.com", "Subject: hi", "", "Just text.", "Line 2"))
    assert msg.text == "Just text.\nLine 2"
    assert msg.html is None
    assert msg.attachments == [] and msg.has_attachments is False
    assert msg.preview == "Just text. Line 2"
    eight_bit = parse_message(build("Subject: x", "", "Gr\u00fc\u00dfe"))
    assert eight_bit.text == "Grüße"


def test_multipart_alternative() -> None:
    msg = parse_message(VALID)
    assert msg.text == "Numbers are up — see attached."
    assert msg.html == "<p>Numbers are up &mdash; see <b>attached</b>.</p>"
    assert msg.preview == "Numbers are up — see attached."
    assert msg.subject == "Quarterly réport"
    assert msg.date == datetime(2024, 1, 2, 9, 30, tzinfo=timezone(timedelta(hours=1)))


def test_multipart_mixed_with_attachments_and_find_part() -> None:
    msg = parse_message(VALID)
    assert msg.attachments == [
        AttachmentInfo(
            id="2",
            filename="q.pdf",
            content_type="application/pdf",
            size=len(b"%PDF-1.4 fake"),
            content_id=None,
            inline=False,
        )
    ]
    assert msg.has_attachments is True
    part = find_part(VALID, "2")
    assert part is not None
    assert (part.content_type, part.filename, part.payload) == (
        "application/pdf",
        "q.pdf",
        b"%PDF-1.4 fake",
    )
    text_part = find_part(VALID, "1.1")
    assert text_part is not None and text_part.charset == "utf-8"
    assert text_part.payload.decode() == "Numbers are up — see attached."


def test_multipart_related_inline_cid_image() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    raw = build(
        'Content-Type: multipart/related; boundary="rel"; type="text/html"',
        "",
        "--rel",
        "Content-Type: text/html; charset=utf-8",
        "",
        '<p>Logo:</p><img src="cid:logo.123@example.com">',
        "--rel",
        "Content-Type: image/png",
        "Content-ID: <logo.123@example.com>",
        "Content-Transfer-Encoding: base64",
        "",
        base64.b64encode(png).decode(),
        "--rel--",
    )
    msg = parse_message(raw)
    assert msg.text is None
    assert msg.preview == "Logo:"
    [image] = msg.attachments
    assert image.inline is True
    assert image.content_id == "logo.123@example.com"
    assert (image.id, image.size, image.content_type) == ("2", len(png), "image/png")
    assert msg.has_attachments is False
    served = find_part(raw, "2")
    assert served is not None and served.payload == png
    assert served.content_id == "logo.123@example.com"


def test_cid_image_in_related_is_no_attachment_even_unreferenced() -> None:
    """has_attachments follows the one rule (adapters.mime.rules) that an IMAP list can
    apply from BODYSTRUCTURE alone, where the HTML's cid: references are not known; so a
    message shows the same flag on IMAP and POP3 lists and in the whole message."""
    raw = build(
        'Content-Type: multipart/related; boundary="rel"',
        "",
        "--rel",
        "Content-Type: text/html",
        "",
        "<p>No image reference here</p>",
        "--rel",
        "Content-Type: image/gif",
        "Content-ID: <unused@example.com>",
        "",
        "GIF89a",
        "--rel--",
    )
    msg = parse_message(raw)
    assert msg.attachments[0].inline is True  # related + Content-ID, no disposition
    assert msg.has_attachments is False


def test_zero_byte_attachment() -> None:
    raw = _attachment_message(
        "Content-Type: application/octet-stream",
        'Content-Disposition: attachment; filename="empty.bin"',
        "Content-Transfer-Encoding: base64",
        payload=b"",
    )
    msg = parse_message(raw)
    assert [(a.filename, a.size) for a in msg.attachments] == [("empty.bin", 0)]
    assert msg.has_attachments is True
    part = find_part(raw, "2")
    assert part is not None and part.payload == b"" and part.size == 0


def test_nested_rfc822_is_one_attachment() -> None:
    raw = build(
        "Subject: Fwd: lunch",
        'Content-Type: multipart/mixed; boundary="o"',
        "",
        "--o",
        "Content-Type: text/plain",
        "",
        "See below.",
        "--o",
        "Content-Type: message/rfc822",
        "",
        "From: Inner <inner@example.com>",
        "Subject: =?utf-8?q?Lunch_=C3=A0_midi?=",
        'Content-Type: multipart/mixed; boundary="i"',
        "",
        "--i",
        "Content-Type: text/plain",
        "",
        "Inner body must stay inside.",
        "--i",
        "Content-Type: image/jpeg",
        'Content-Disposition: attachment; filename="inner.jpg"',
        "",
        "JPEG",
        "--i--",
        "--o--",
    )
    msg = parse_message(raw)
    assert msg.text == "See below."
    [att] = msg.attachments
    assert (att.id, att.content_type, att.filename) == ("2", "message/rfc822", "Lunch à midi.eml")
    assert att.size > 0 and msg.has_attachments
    part = find_part(raw, "2")
    assert part is not None and part.size == att.size
    inner = parse_message(part.payload)
    assert inner.subject == "Lunch à midi"
    assert inner.text == "Inner body must stay inside."
    assert [a.filename for a in inner.attachments] == ["inner.jpg"]
    deep = find_part(raw, "2.2")  # IMAP numbering continues inside the attached message
    assert deep is not None and deep.filename == "inner.jpg" and deep.payload == b"JPEG"


def test_text_plain_with_attachment_disposition_is_not_body() -> None:
    raw = build(
        'Content-Type: multipart/mixed; boundary="m"',
        "",
        "--m",
        "Content-Type: text/plain",
        "",
        "The real body.",
        "--m",
        "Content-Type: text/plain; charset=utf-8",
        'Content-Disposition: attachment; filename="notes.txt"',
        "",
        "attached notes",
        "--m--",
    )
    msg = parse_message(raw)
    assert msg.text == "The real body."
    assert [(a.filename, a.content_type, a.size) for a in msg.attachments] == [
        ("notes.txt", "text/plain", len("attached notes"))
    ]
    only = parse_message(
        simple("Content-Type: text/plain", 'Content-Disposition: attachment; filename="a.txt"')
    )
    assert only.text is None
    assert [(a.id, a.filename) for a in only.attachments] == [("1", "a.txt")]


def test_multiple_text_parts_are_concatenated_in_order() -> None:
    raw = build(
        'Content-Type: multipart/mixed; boundary="m"',
        "",
        "--m",
        "Content-Type: text/plain",
        "",
        "Before the photo.",
        "--m",
        "Content-Type: image/jpeg",
        "Content-Disposition: inline",
        "",
        "JPEG",
        "--m",
        "Content-Type: text/plain",
        "",
        "After the photo.",
        "--m--",
    )
    msg = parse_message(raw)
    assert msg.text == "Before the photo.\nAfter the photo."
    assert msg.html is None
    [photo] = msg.attachments
    assert (photo.id, photo.inline) == ("2", True)
    assert msg.has_attachments is True  # shown inline, but not referenced from HTML


def test_list_footer_after_alternative_reaches_both_bodies() -> None:
    raw = build(
        'Content-Type: multipart/mixed; boundary="m"',
        "",
        "--m",
        'Content-Type: multipart/alternative; boundary="a"',
        "",
        "--a",
        "Content-Type: text/plain",
        "",
        "Hello list",
        "--a",
        "Content-Type: text/html",
        "",
        "<p>Hello list</p>",
        "--a--",
        "--m",
        "Content-Type: text/plain",
        "",
        "Unsubscribe: <https://example.com/u>",
        "--m--",
    )
    msg = parse_message(raw)
    assert msg.text == "Hello list\nUnsubscribe: <https://example.com/u>"
    assert msg.html is not None
    assert msg.html.startswith("<p>Hello list</p>")
    assert "Unsubscribe: &lt;https://example.com/u&gt;</pre>" in msg.html
    assert msg.attachments == []


def test_delivery_report_parts_are_attachments() -> None:
    raw = build(
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
        "",
        "--r",
        "Content-Type: text/plain",
        "",
        "Delivery failed.",
        "--r",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.com",
        "",
        "Final-Recipient: rfc822; gone@example.com",
        "Action: failed",
        "",
        "--r",
        "Content-Type: text/rfc822-headers",
        "",
        "Subject: original",
        "--r--",
    )
    msg = parse_message(raw)
    assert msg.text == "Delivery failed."
    assert [(a.id, a.content_type, a.filename) for a in msg.attachments] == [
        ("2", "message/delivery-status", None),
        ("3", "text/rfc822-headers", None),
    ]
    status = find_part(raw, "2")
    assert status is not None and b"Action: failed" in status.payload


def test_html_only_message() -> None:
    body = (
        b"<html><head><title>T</title><style>p{color:red}</style></head>"
        b"<body><script>alert(1)</script><p>Hi &amp; welcome,</p><p>friend&nbsp;!</p>"
        b"</body></html>"
    )
    msg = parse_message(simple("Content-Type: text/html; charset=utf-8", body=body))
    assert msg.text is None
    assert msg.html == body.decode()
    assert msg.preview == "Hi & welcome, friend !"


def test_multipart_without_boundary_shows_raw_body() -> None:
    msg = parse_message(simple("Content-Type: multipart/mixed", body=b"no boundary here"))
    assert msg.text == "no boundary here"
    assert msg.attachments == []


def _nested(depth: int) -> bytes:
    lines: list[str] = []
    for level in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{level}"', "", f"--b{level}"]
    lines += ["Content-Type: text/plain", "", "deep"]
    lines += [f"--b{level}--" for level in reversed(range(depth))]
    return build(*lines)


def test_nested_multiparts_are_numbered_like_imap() -> None:
    raw = _nested(10)
    assert parse_message(raw).text == "deep"
    part = find_part(raw, ".".join(["1"] * 10))
    assert part is not None and part.payload == b"deep"


def test_hostile_nesting_is_cut_off_without_crashing() -> None:
    msg = parse_message(_nested(120))
    assert (msg.text, msg.attachments) == (None, [])


def test_header_that_crashes_policy_default_falls_back_to_compat32() -> None:
    # CPython's policy.default raises IndexError on a parameter like "name*" without "=".
    raw = build(
        b"From: Jos\xe9 <jose@example.com>",
        'Content-Type: multipart/mixed; boundary="b"',
        "",
        "--b",
        "Content-Type: text/plain; charset=utf-8; format*",
        "",
        "Body caf\u00e9",
        "--b",
        "Content-Type: application/pdf; name*",
        'Content-Disposition: attachment; filename="a.pdf"',
        "Content-Transfer-Encoding: base64",
        "",
        "aGk=",
        "--b--",
    )
    msg = parse_message(raw)
    assert msg.from_ == [EmailAddress(name="José", email="jose@example.com")]
    assert msg.text == "Body café"
    assert [(a.id, a.filename, a.size) for a in msg.attachments] == [("2", "a.pdf", 2)]
    part = find_part(raw, "2")
    assert part is not None and part.payload == b"hi"
    assert parse_summary_headers(raw).from_[0].name == "José"


# --- Dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Date: Mon, 1 Jan 2024 10:00:00 +0200", datetime(2024, 1, 1, 8, 0, tzinfo=UTC)),
        ("Date: Mon, 1 Jan 2024 10:00:00", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
        ("Date: Mon, 1 Jan 2024 10:00:00 -0000", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
        ("Date: 1 Jan 2024 10:00:00 GMT (comment)", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
        ("Date: yesterday-ish", None),
        ("Date: Mon, 99 Foo 2024 99:99:99 +9999", None),
        ("Date: ", None),
        ("X-No-Date: 1", None),
    ],
)
def test_dates(header: str, expected: datetime | None) -> None:
    msg = parse_message(simple(header))
    assert msg.date == expected
    if msg.date is not None:
        assert msg.date.tzinfo is not None


# --- Addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("undisclosed-recipients:;", [("undisclosed-recipients", "")]),
        (
            '"Doe, John" <john@example.com>, jane@example.com',
            [("Doe, John", "john@example.com"), (None, "jane@example.com")],
        ),
        ("bare@example.com", [(None, "bare@example.com")]),
        (
            "Team: a@example.com, B <b@example.com>;, c@example.com",
            [(None, "a@example.com"), ("B", "b@example.com"), (None, "c@example.com")],
        ),
        ("<<<@>>", [("<<<@>>", "")]),
        ("", []),
        (",,,", []),
    ],
)
def test_address_lists(header: str, expected: list[tuple[str | None, str]]) -> None:
    msg = parse_message(simple(f"To: {header}"))
    assert [(a.name, a.email) for a in msg.to] == expected


@pytest.mark.parametrize(
    "garbage",
    ['"unterminated <a@b', "a@b@c@@", "<>", "@", ":::;;;", "=?utf-8?b?!!!?= <x@y>", "(((("],
)
def test_address_garbage_never_raises(garbage: str) -> None:
    msg = parse_message(simple(f"From: {garbage}", f"Cc: {garbage}, ok@example.com"))
    assert all(isinstance(a, EmailAddress) for a in msg.from_ + msg.cc)


# --- Line endings, NUL bytes -------------------------------------------------------------


def test_bare_lf_and_crlf_give_same_result() -> None:
    lines = VALID.split(b"\r\n")
    crlf = parse_message(build(*lines, sep=b"\r\n"))
    lf = parse_message(build(*lines, sep=b"\n"))
    assert lf.model_dump(exclude={"size"}) == crlf.model_dump(exclude={"size"})
    assert lf.text == "Numbers are up — see attached."
    assert [a.filename for a in lf.attachments] == ["q.pdf"]


def test_nul_bytes_do_not_crash() -> None:
    raw = simple("Subject: nul\x00here", "Content-Type: text/plain", body=b"a\x00b\x00\x00c")
    msg = parse_message(raw)
    assert msg.text == "abc"
    assert msg.subject == "nulhere"
    msg.model_dump_json()
    nul_charset = simple('Content-Type: text/plain; charset="utf\x008"', body="café".encode())
    assert parse_message(nul_charset).text == "café"


# --- Message ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message_id", "in_reply_to", "references"),
    [
        (["Message-ID: <a1@example.com>"], "a1@example.com", [], []),
        (["Message-ID: a1@example.com"], "a1@example.com", [], []),
        (["Message-ID:  12345 "], "12345", [], []),
        (["In-Reply-To: <p@x> (Your message of Monday)"], None, ["p@x"], []),
        (["In-Reply-To: Your message of Monday"], None, [], []),
        (
            ["References: <r1@x> <r2@x>", "\t<r3@x>\r\n <r4@x>,r5@x"],
            None,
            [],
            ["r1@x", "r2@x", "r3@x", "r4@x", "r5@x"],
        ),
        (["References: <r1@x>", "References: <r1@x> <r2@x>"], None, [], ["r1@x", "r2@x"]),
        (["Message-ID: <\r\n split@x>"], "split@x", [], []),
    ],
)
def test_message_ids(
    headers: list[str], message_id: str | None, in_reply_to: list[str], references: list[str]
) -> None:
    msg = parse_message(simple(*headers))
    assert (msg.message_id, msg.in_reply_to, msg.references) == (
        message_id,
        in_reply_to,
        references,
    )


# --- Size, speed, fuzzing -----------------------------------------------------------------


def test_large_attachment_parses() -> None:
    blob = random.Random(7).randbytes(5 * 1024 * 1024)
    encoded = base64.encodebytes(blob)
    raw = _attachment_message(
        "Content-Type: application/zip",
        'Content-Disposition: attachment; filename="big.zip"',
        "Content-Transfer-Encoding: base64",
        payload=encoded.rstrip(b"\n").replace(b"\n", b"\r\n"),
    )
    started = time.perf_counter()
    msg = parse_message(raw)
    elapsed = time.perf_counter() - started
    print(f"\nparse_message on {len(raw) / 1e6:.1f} MB took {elapsed:.3f}s")
    assert msg.size == len(raw)
    assert [(a.filename, a.size) for a in msg.attachments] == [("big.zip", len(blob))]
    started = time.perf_counter()
    part = find_part(raw, "2")
    print(f"find_part on {len(raw) / 1e6:.1f} MB took {time.perf_counter() - started:.3f}s")
    assert part is not None and part.payload == blob


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """Apply one to four random byte-level edits to ``data``."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("flip", "insert", "delete", "duplicate", "truncate"))
        pos = rng.randrange(len(buf) + 1)
        if op == "flip" and buf:
            buf[pos % len(buf)] = rng.randrange(256)
        elif op == "insert":
            buf[pos:pos] = rng.choice([rng.randbytes(rng.randint(1, 16)), b"\r\n", b"--", b"=?"])
        elif op == "delete":
            del buf[pos : pos + rng.randint(1, 40)]
        elif op == "duplicate":
            buf[pos:pos] = buf[max(0, pos - 60) : pos]
        else:
            del buf[pos:]
    return bytes(buf)


def test_fuzz_parse_never_raises() -> None:
    rng = random.Random(20240101)
    samples = [rng.randbytes(rng.randint(0, 400)) for _ in range(100)]
    samples += [_mutate(rng, VALID) for _ in range(100)]
    for raw in samples:
        msg = parse_message(raw)
        assert msg.size == len(raw)
        msg.model_dump_json()  # must be serializable (no lone surrogates)
        parse_summary_headers(raw).model_dump_json()
        for att in msg.attachments:
            find_part(raw, att.id)


# --- Header summary, find_part edges -------------------------------------------------------


def test_parse_summary_headers_from_header_block() -> None:
    block = build(
        "Subject: =?utf-8?q?Status_=E2=9C=93?=",
        'From: "Ops, Team" <ops@example.com>',
        "To: dev@example.com",
        "Cc: undisclosed-recipients:;",
        "Date: Wed, 3 Jan 2024 12:00:00 +0000",
        "Message-ID: <s1@example.com>",
        "",
        "",
    )
    summary = parse_summary_headers(block)
    assert isinstance(summary, HeaderSummary)
    assert summary.subject == "Status ✓"
    assert summary.from_ == [EmailAddress(name="Ops, Team", email="ops@example.com")]
    assert [a.email for a in summary.to] == ["dev@example.com"]
    assert summary.cc == [EmailAddress(name="undisclosed-recipients", email="")]
    assert summary.date == datetime(2024, 1, 3, 12, tzinfo=UTC)
    assert summary.message_id == "s1@example.com"
    assert parse_summary_headers(b"") == HeaderSummary()


@pytest.mark.parametrize("part_id", ["0", "3", "1.0", "", "a", "1..2", "2.1", "1.1.1", " "])
def test_find_part_unknown_ids(part_id: str) -> None:
    assert find_part(VALID, part_id) is None


def test_find_part_single_part_and_container() -> None:
    single = simple("Content-Type: text/plain; charset=iso-8859-1", body=b"caf\xe9")
    part = find_part(single, "1")
    assert part is not None
    assert (part.content_type, part.charset, part.payload) == (
        "text/plain",
        "iso-8859-1",
        b"caf\xe9",
    )
    assert find_part(VALID, "1") is None  # multipart/alternative container, not a leaf


# --- html_to_text / make_preview -----------------------------------------------------------


def test_html_to_text() -> None:
    html = (
        "<html><head><title>x</title><style>.a{}</style></head><body>"
        "<h1>Title</h1><p>First&nbsp;para &amp; more</p><div>Second<br>line</div>"
        "<ul><li>one</li><li>two</li></ul><script>var x = '<p>no</p>';</script>"
        "<table><tr><td>a</td><td>b</td></tr></table><pre>  keep   spaces</pre>"
        "<!-- hidden --></body></html>"
    )
    assert html_to_text(html) == (
        "Title\n\nFirst para & more\n\nSecond\nline\n\n- one\n\n- two\n\na b\n\nkeep   spaces"
    )
    assert html_to_text("") == ""
    assert html_to_text("<head><p>unclosed head<body>visible") == "visible"
    assert isinstance(html_to_text("<p>broken <b attr='x>tail <!-- open <![CDATA["), str)


def test_make_preview() -> None:
    assert make_preview("  Hello\n\n  world\t!  ", None) == "Hello world !"
    assert make_preview(None, "<p>From <b>HTML</b></p><style>x{}</style>") == "From HTML"
    assert make_preview("   ", "<p>fallback</p>") == "fallback"
    assert make_preview(None, None) == ""
    assert make_preview("\u200b\u034f\u200c", "<p>html wins</p>") == "html wins"
    long = " ".join(["word"] * 100)
    preview = make_preview(long, None)
    assert len(preview) <= 200 and preview.endswith("word") and preview.startswith("word word")
    assert make_preview("x" * 500, None, limit=50) == "x" * 50
    assert make_preview("anything", None, limit=0) == ""


# --- Model / OpenAPI ----------------------------------------------------------------------------


def test_model_json_uses_from_alias_and_documents_fields() -> None:
    msg = parse_message(VALID)
    dumped = msg.model_dump(mode="json", by_alias=True)
    assert dumped["from"] == [{"name": "Alice Example", "email": "alice@example.com"}]
    assert "from_" not in dumped
    assert ParsedMessage.model_validate(dumped) == msg
    for model in (EmailAddress, AttachmentInfo, HeaderSummary, ParsedMessage):
        schema = model.model_json_schema()
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{model.__name__}.{name} lacks a description"
