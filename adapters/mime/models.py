"""JSON message model returned by the IMAP and POP3 adapters.

A plain-JSON cousin of the JMAP Email object (RFC 8621 §4.1): header fields are decoded
(RFC 2047/2231), bodies are decoded to text, attachments are described, not inlined.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mailgate.domain.mail import AttachmentInfo, EmailAddress, Message, MessageSummary


class HeaderSummary(BaseModel):
    """Header fields needed for list views, parsed from a header block alone."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    subject: str | None = Field(
        None, description="Subject, RFC 2047-decoded and trimmed; null when absent."
    )
    from_: list[EmailAddress] = Field(
        default_factory=list, alias="from", description="Addresses from the From header."
    )
    to: list[EmailAddress] = Field(default_factory=list, description="To recipients.")
    cc: list[EmailAddress] = Field(default_factory=list, description="Cc recipients.")
    date: datetime | None = Field(
        None,
        description="Date header as a timezone-aware timestamp; a date without zone is "
        "taken as UTC; null when missing or unparseable.",
    )
    message_id: str | None = Field(
        None, description="Message-ID without angle brackets; null when absent."
    )


class ParsedMessage(HeaderSummary):
    """A fully parsed message (RFC 5322 + MIME RFC 2045-2049).

    ``text``/``html`` follow the JMAP textBody/htmlBody selection (RFC 8621 §4.1.4):
    every inline body part is kept in document order and the parts are concatenated, so a
    second text/plain part (say a list footer after an image) is appended, not dropped.
    ``has_attachments`` follows the one rule of :mod:`mailgate.adapters.mime.rules`.
    """

    bcc: list[EmailAddress] = Field(default_factory=list, description="Bcc recipients.")
    reply_to: list[EmailAddress] = Field(
        default_factory=list, description="Addresses from the Reply-To header."
    )
    in_reply_to: list[str] = Field(
        default_factory=list, description="In-Reply-To message ids, without angle brackets."
    )
    references: list[str] = Field(
        default_factory=list, description="References message ids in order, no brackets."
    )
    text: str | None = Field(
        None,
        description="Plain-text body: the inline text/plain parts concatenated (HTML parts "
        "that sit between them are converted to text); null when there is no text/plain "
        "body part.",
    )
    html: str | None = Field(
        None,
        description="HTML body: the inline text/html parts concatenated (text/plain parts "
        "between them are wrapped in <pre>); null when there is no text/html body part. "
        "Not sanitized.",
    )
    attachments: list[AttachmentInfo] = Field(
        default_factory=list,
        description="Parts that are not body text, in document order. An attached "
        "message/rfc822 is one entry; its inner parts are not listed.",
    )
    has_attachments: bool = Field(
        False,
        description="True when there is an attachment other than an embedded image, i.e. "
        "other than a part whose Content-ID the HTML body references via 'cid:'.",
    )
    preview: str = Field(
        "",
        description="Up to ~200 characters of body text, whitespace collapsed; taken from "
        "the HTML (tags, scripts and styles removed) when there is no plain text.",
    )
    size: int = Field(ge=0, description="Size of the raw message in bytes.")


@dataclass(frozen=True, slots=True)
class AttachmentPart:
    """One MIME part's decoded content, for serving a single attachment (RFC 2045 §6)."""

    part_id: str
    content_type: str
    filename: str | None
    payload: bytes
    charset: str | None = None
    content_id: str | None = None

    @property
    def size(self) -> int:
        """Decoded payload length in bytes."""
        return len(self.payload)


def to_message(summary: MessageSummary, parsed: ParsedMessage) -> Message:
    """The whole message the API answers: the list summary plus what the parser decoded."""
    return Message(
        **summary.model_dump(exclude={"from_"}),
        from_=parsed.from_,
        bcc=parsed.bcc,
        reply_to=parsed.reply_to,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        text=parsed.text,
        html=parsed.html,
        attachments=parsed.attachments,
    )
