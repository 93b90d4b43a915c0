"""adapters.mime.compose: a compose request becomes a message that Mailgate's own parser
(and any mail client) reads back as it was meant, with nothing of Bcc in it."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from mailgate.adapters.mime import find_part
from mailgate.adapters.mime.parse import parse_message
from mailgate.adapters.sending.compose import compose, for_sending
from mailgate.domain.sending import ComposeRequest, Recipient

ALICE = Recipient(email="alice@example.test", name="Alice Ångström")
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def request(**fields: Any) -> ComposeRequest:
    fields.setdefault("to", [{"name": "Bøb", "email": "bob@example.test"}])
    return ComposeRequest.model_validate(fields)


def test_a_full_message_reads_back_as_written() -> None:
    spec = request(
        cc=[{"email": "carol@example.test"}],
        bcc=[{"email": "secret@example.test"}],
        reply_to=[{"email": "replies@example.test"}],
        subject="Grüße — " + "a long subject " * 8,
        text="héllo\n" + "x" * 200,
        html="<p>héllo</p>",
        attachments=[
            {
                "filename": "résumé 2026.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(PDF).decode(),
            }
        ],
        headers={"List-Unsubscribe": "<mailto:unsubscribe@example.test>"},
    )
    composed = compose(spec, ALICE, NOW)
    raw = composed.as_bytes()
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"secret@" not in raw and b"Bcc" not in raw
    assert raw.count(b"MIME-Version") == 1
    parsed = parse_message(raw)
    assert parsed.subject == spec.subject.strip()
    assert [(a.name, a.email) for a in parsed.from_] == [("Alice Ångström", "alice@example.test")]
    assert [(a.name, a.email) for a in parsed.to] == [("Bøb", "bob@example.test")]
    assert [a.email for a in parsed.cc] == ["carol@example.test"]
    assert [a.email for a in parsed.reply_to] == ["replies@example.test"]
    assert parsed.text is not None and parsed.text.startswith("héllo\n" + "x" * 200)
    assert parsed.html is not None and "<p>héllo</p>" in parsed.html
    [attachment] = parsed.attachments
    assert attachment.filename == "résumé 2026.pdf"
    part = find_part(raw, attachment.id)
    assert part is not None and part.payload == PDF
    assert parsed.message_id == composed.message_id.strip("<>")
    assert composed.message_id.endswith("@example.test>")
    assert composed.recipients == ["bob@example.test", "carol@example.test", "secret@example.test"]
    assert composed.sender == "alice@example.test"


def test_ascii_text_alone_is_7bit_and_html_alone_gets_a_text_part() -> None:
    plain = compose(request(text="just ascii"), ALICE, NOW).as_bytes()
    assert b"Content-Transfer-Encoding: 7bit" in plain and b"multipart" not in plain
    html = parse_message(compose(request(html="<b>Hi</b> there"), ALICE, NOW).as_bytes())
    assert html.text is not None and "Hi there" in html.text
    assert html.html is not None and "<b>Hi</b>" in html.html


def test_repeated_recipients_are_sent_once() -> None:
    spec = request(
        cc=[{"email": "bob@example.test"}], bcc=[{"email": "bob@example.test"}], text="x"
    )
    assert compose(spec, ALICE, NOW).recipients == ["bob@example.test"]


@pytest.mark.parametrize(
    "fields",
    [
        {"to": [], "text": "no recipient"},
        {"to": [{"email": "not an address"}], "text": "x"},
        {"to": [{"email": "a@b.invalid"}], "text": "x"},
        {"subject": "two\r\nBcc: evil@example.test", "text": "x"},
        {"to": [{"name": "Eve\r\nBcc: x@y.test", "email": "e@example.test"}], "text": "x"},
        {"headers": {"Bcc": "evil@example.test"}, "text": "x"},
        {"headers": {"X-Priority": "1\r\nBcc: evil@example.test"}, "text": "x"},
        {"to": [{"email": f"r{i}@example.test"} for i in range(101)], "text": "x"},
        {"subject": "nothing to say"},
        {"attachments": [{"filename": "a", "content_base64": "!!!"}], "text": "x"},
    ],
)
def test_bad_requests_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        request(**fields)


# -- for_sending: a stored draft as it goes out -----------------------------------------------


def _draft(message_id: str | None) -> bytes:
    head = "From: ann@example.org\r\nTo: bob@example.org\r\nSubject: Hi\r\n"
    if message_id is not None:
        head += f"Message-ID: {message_id}\r\n"
    return (head + "\r\nBody\r\n").encode()


def test_a_draft_keeps_its_message_id() -> None:
    composed = for_sending(_draft("<kept.1@example.org>"))
    assert composed.message_id == "<kept.1@example.org>"
    assert composed.message.get_all("Message-ID") == ["<kept.1@example.org>"]


@pytest.mark.parametrize(
    "odd",
    [
        None,
        "<" + "x" * 1000 + "@example.org>",  # no header line holds it (RFC 5322 2.1.1)
        "not an id",
        "<no-at-sign>",
        "<a b@example.org>",
    ],
    ids=["none", "too long", "not an id", "no at sign", "a space"],
)
def test_a_draft_without_a_usable_message_id_gets_a_fresh_one(odd: str | None) -> None:
    """Another mail client may have left any Message-ID in a draft (a long one failed the
    submission's insert on PostgreSQL)."""
    composed = for_sending(_draft(odd))
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.org>", composed.message_id)
    assert composed.message.get_all("Message-ID") == [composed.message_id]
