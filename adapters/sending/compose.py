"""Build a message to send from a compose request, with the standard library's email package
(policy SMTP: CRLF, RFC 2047 encoded words in headers, RFC 2231 filenames, the transfer
encoding chosen by content: 7bit, quoted-printable or base64).

Structure: text alone, HTML alone (a text alternative is made from it), or both as
multipart/alternative; attachments make it multipart/mixed. Bcc recipients go in the
envelope only, never in a header.
"""

from __future__ import annotations

import email
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from mailgate.adapters.mime._html import html_to_text
from mailgate.domain.sending import DraftRequest, InlineAttachment, Recipient

# RFC 5322 msg-id, kept to printable ASCII without "<", ">" or spaces; and what one header
# line of 998 characters holds with its "Message-ID: "
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
_MESSAGE_ID_LENGTH = 998 - len("Message-ID: ")


class _Headers(HeaderRegistry):
    """The stdlib's registry makes a new class each time a header is set or read (10 µs,
    some 20 times a message); the class made once serves every time."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# 7bit on the wire: 8-bit text goes quoted-printable or base64, whichever is shorter, so no
# server needs 8BITMIME; CRLF line ends; long headers folded with encoded words.
POLICY = SMTP.clone(cte_type="7bit", header_factory=_Headers())


@dataclass(frozen=True)
class Original:
    """The message a reply answers or a forward carries."""

    message_id: str | None  # without angle brackets
    references: list[str]
    raw: bytes | None = None  # a forward attaches it whole (message/rfc822)


@dataclass(frozen=True)
class AttachmentPart:
    """An attachment with its content at hand (given inline, or an upload read back)."""

    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None

    @classmethod
    def inline(cls, given: InlineAttachment) -> AttachmentPart:
        return cls(given.filename, given.content_type, given.content(), given.content_id)


@dataclass(frozen=True)
class Composed:
    message: EmailMessage
    message_id: str  # with the angle brackets, as in the header
    sender: str  # the envelope sender (MAIL FROM)
    recipients: list[str]  # the envelope recipients, each once, in order

    def as_bytes(self) -> bytes:
        return self.message.as_bytes(policy=POLICY)


def compose(
    spec: DraftRequest,
    sender: Recipient,
    now: datetime,
    *,
    answering: Original | None = None,
    forwarding: Original | None = None,
    draft: bool = False,
    attachments: Sequence[AttachmentPart] | None = None,
) -> Composed:
    """The message; ``answering`` threads it under a message (In-Reply-To, References,
    RFC 5322 section 3.6.4), ``forwarding`` attaches one whole. A ``draft`` keeps its Bcc
    in a header (it is not sent yet: ``for_sending`` takes it out). ``attachments``: the
    request's attachments with their content (uploads read back); without it the request
    may hold inline ones only."""
    if attachments is None:
        attachments = [_inline_only(attachment) for attachment in spec.attachments]
    message = EmailMessage(policy=POLICY)
    domain = str(sender.email).rpartition("@")[2] or "localhost"
    message_id = f"<{secrets.token_hex(16)}@{domain}>"  # random: nothing of the host leaks
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(now)
    message["From"] = _address(sender)
    headers = [("To", spec.to), ("Cc", spec.cc), ("Reply-To", spec.reply_to)]
    if draft:
        headers.append(("Bcc", spec.bcc))
    for header, listed in headers:
        if listed:
            message[header] = [_address(recipient) for recipient in listed]
    message["Subject"] = spec.subject
    if answering is not None and answering.message_id:
        message["In-Reply-To"] = f"<{answering.message_id}>"
        chain = [*answering.references, answering.message_id][-20:]  # the thread, bounded
        message["References"] = " ".join(f"<{ref}>" for ref in dict.fromkeys(chain))
    for name, value in spec.headers.items():
        message[name] = value
    message["MIME-Version"] = "1.0"
    _body(message, spec)
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            disposition="inline" if attachment.content_id else "attachment",
            cid=f"<{attachment.content_id.strip('<>')}>" if attachment.content_id else None,
        )
    if forwarding is not None and forwarding.raw is not None:
        if (
            not message.is_multipart()
            and message.get_content_type() == "text/plain"
            and (spec.text is None and spec.html is None)
        ):
            message.set_content("")
        message.add_attachment(
            email.message_from_bytes(forwarding.raw, policy=POLICY),
            filename="forwarded.eml",
        )
    for part in message.walk():  # the stdlib repeats it on parts it makes; once is the rule
        if part is not message:
            del part["MIME-Version"]
    recipients = list(dict.fromkeys(str(r.email) for r in (*spec.to, *spec.cc, *spec.bcc)))
    return Composed(message, message_id, str(sender.email), recipients)


def _inline_only(attachment: object) -> AttachmentPart:
    if not isinstance(attachment, InlineAttachment):
        raise ValueError("an uploaded attachment needs its content: pass `attachments`")
    return AttachmentPart.inline(attachment)


def _body(message: EmailMessage, spec: DraftRequest) -> None:
    text = (
        spec.text
        if spec.text is not None
        else (html_to_text(spec.html) if spec.html is not None else None)
    )
    if text is not None:
        message.set_content(text)
    if spec.html is not None:
        message.add_alternative(spec.html, subtype="html")


def _address(recipient: Recipient) -> Address:
    local, _, domain = str(recipient.email).rpartition("@")
    return Address(display_name=recipient.name or "", username=local, domain=domain)


def for_sending(raw: bytes) -> Composed:
    """A stored message (a draft) as it goes out: envelope recipients from To, Cc and Bcc,
    the Bcc header taken out, the sender from From. Raises ValueError when it names no
    sender or no recipient."""
    message = email.message_from_bytes(raw, policy=POLICY)
    assert isinstance(message, EmailMessage)
    recipients: list[str] = []
    for header in ("To", "Cc", "Bcc"):
        for value in message.get_all(header, []):
            recipients += [a.addr_spec for a in getattr(value, "addresses", ()) if a.addr_spec]
    del message["Bcc"]
    senders = [a.addr_spec for a in getattr(message["From"], "addresses", ()) if a.addr_spec]
    if not senders:
        raise ValueError("the draft has no From")
    if not recipients:
        raise ValueError("the draft has no recipients in To, Cc or Bcc")
    message_id = str(message["Message-ID"] or "").strip()
    if len(message_id) > _MESSAGE_ID_LENGTH or not _MESSAGE_ID.fullmatch(message_id):
        # none, or what another client left that no header line can hold (RFC 5322 section
        # 2.1.1: 998 characters, "Message-ID: " included) or that is no msg-id: a fresh one
        del message["Message-ID"]
        message_id = f"<{secrets.token_hex(16)}@{senders[0].rpartition('@')[2]}>"
        message["Message-ID"] = message_id
    return Composed(message, message_id, senders[0], list(dict.fromkeys(recipients)))
