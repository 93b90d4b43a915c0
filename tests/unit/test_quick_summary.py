"""The list-view fast path agrees with the full parser on what a list shows."""

from __future__ import annotations

import pytest

from mailgate.adapters.mime import parse_message
from mailgate.adapters.mime.summary import quick_summary
from tests.mail_factory import message_with_attachments, text_message

CASES = {
    "plain": text_message("Hello", "Just text."),
    "encoded": text_message(
        "=?utf-8?q?Gr=C3=BC=C3=9Fe?= and more",
        "Körper",
        sender="=?iso-8859-1?q?J=F6rg?= <j@example.com>",
    ),
    "multipart": message_with_attachments("Report"),
    "8bit": (
        "Subject: Ümlaut\r\nFrom: Jörg <j@example.com>\r\n"
        'To: a@example.com, "B, C" <b@example.com>\r\n\r\nbody\r\n'
    ).encode(),
    "html-only": b"Subject: h\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>Hi <b>there</b></p><script>x()</script>\r\n",
    "no-content-type": b"Subject: bare\r\n\r\nplain body\r\n",
    "groups": b"Subject: g\r\nTo: undisclosed-recipients:;\r\nFrom: <<<@>>\r\n\r\nx\r\n",
}


@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
def test_quick_summary_matches_the_full_parser(raw: bytes) -> None:
    header, _, body = raw.partition(b"\r\n\r\n")
    quick = quick_summary(header + b"\r\n\r\n", body[:2048])
    full = parse_message(raw)
    assert quick.subject == full.subject
    assert [a.email for a in quick.from_] == [a.email for a in full.from_]
    assert [a.name for a in quick.from_ if a.email] == [a.name for a in full.from_ if a.email]
    assert [a.email for a in quick.to if a.email] == [a.email for a in full.to if a.email]
    assert quick.date == full.date
    assert quick.preview == full.preview


def test_truncated_body_and_garbage_never_raise() -> None:
    raw = message_with_attachments("Report", {"a.bin": bytes(5000)})
    header, _, body = raw.partition(b"\r\n\r\n")
    assert quick_summary(header, body[:700]).subject == "Report"
    assert quick_summary(b"\xff\xfe\x00", b"\x00" * 10).subject is None


@pytest.mark.parametrize(
    "value",
    [
        "a@example.com",
        "Alice <alice@example.com>",
        "Alice Smith <alice@example.com>, bob@example.com, Carol <c@example.org>",
        "=?utf-8?q?Zo=C3=AB?= <zoe@example.com>",
        '"Smith, John" <john@example.com>',
        "John (the boss) <john@example.com>",
        "undisclosed-recipients:;",
        "<<<@>>",
        "x@y, , z@w",
        "Name <not-an-address>",
        '"Anna Petrov" <anna.petrov@example.com>, =?utf-8?b?Sm9zw6kgTcO8bGxlcg==?= <j@example.org>',
        '"Quoted \\"inner\\"" <q@example.com>',
        '"" <empty@example.com>',
        "a@example.com,",
    ],
)
def test_address_fast_path_agrees_with_the_full_parser(value: str) -> None:
    header = f"Subject: s\r\nTo: {value}\r\n".encode()
    quick = quick_summary(header, b"")
    full = parse_message(header + b"\r\nbody\r\n")
    assert [(a.name, a.email) for a in quick.to] == [(a.name, a.email) for a in full.to]
