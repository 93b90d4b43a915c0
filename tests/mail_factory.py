"""Realistic RFC 5322 messages for the tests, built with the stdlib."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid


def text_message(
    subject: str = "Hello",
    body: str = "Just text.",
    sender: str = "Alice <alice@example.com>",
    to: str = "Bob <bob@example.com>",
    date: datetime | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(date or datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def message_with_attachments(
    subject: str = "Report", attachments: dict[str, bytes] | None = None
) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "Zoë Müller <zoe@example.com>"
    msg["To"] = "bob@example.com"
    msg["Date"] = format_datetime(datetime(2024, 5, 2, 9, 30, tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content("See the attachments.")
    msg.add_alternative("<p>See the <b>attachments</b>.</p>", subtype="html")
    for name, data in (attachments or {"Résumé.pdf": b"%PDF-1.4 fake"}).items():
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def dated(n: int) -> list[bytes]:
    """n messages, one a day, subject 'Message i'."""
    start = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    return [
        text_message(f"Message {i}", f"Body {i}", date=start + timedelta(days=i)) for i in range(n)
    ]


def message_with_inline_image(subject: str = "Newsletter", pdf: bool = False) -> bytes:
    """An HTML mail showing an image by ``cid:`` (multipart/related); with ``pdf``, a real
    attachment besides."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "news@example.com"
    msg["To"] = "bob@example.com"
    msg["Date"] = format_datetime(datetime(2024, 5, 3, 7, 0, tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content("The logo, then the news.")
    cid = make_msgid(domain="example.com")
    msg.add_alternative(f'<p><img src="cid:{cid[1:-1]}"> The news.</p>', subtype="html")
    html = msg.get_payload()[1]  # type: ignore[index]
    html.add_related(b"GIF89a-logo", maintype="image", subtype="gif", cid=cid)
    if pdf:
        msg.add_attachment(
            b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="a.pdf"
        )
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
