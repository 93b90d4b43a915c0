"""Request and response models for sending (/v1/accounts/{id}/send, submissions) and the
account's SMTP settings."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)
from typing_extensions import TypeAliasType

from mailgate.domain import examples as ex
from mailgate.domain.accounts import EmailAddress, Host, Password, Port, Username
from mailgate.domain.base import ResponseModel, StrictModel
from mailgate.domain.endpoint import Security
from mailgate.domain.examples import examples

_LINE_BREAK = re.compile(r"[\r\n\x00]")
MAX_RECIPIENTS = 100  # per message, to + cc + bcc (Postfix' smtpd_recipient_limit is 1000)
MAX_INLINE_BYTES = 5 * 1024 * 1024  # decoded, all inline attachments of one message

# Headers a caller may add. Everything that carries addresses, identity, threading or the MIME
# structure is Mailgate's to write from the typed fields.
ALLOWED_HEADERS = frozenset(
    {
        "comments",
        "keywords",
        "importance",
        "priority",
        "x-priority",
        "sensitivity",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
        "auto-submitted",
        "precedence",
    }
)
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,76}")


def _one_line(value: str | None) -> str | None:
    if value is not None and _LINE_BREAK.search(value):
        raise ValueError("must not contain CR, LF or NUL")
    return value


OneLine = Annotated[str, AfterValidator(_one_line)]


def _no_directories(value: str) -> str:
    """A file name alone: mail readers (Mailgate's own included) drop what comes before a
    ``/`` or ``\\``, so the recipient would see another name than the one sent."""
    if "/" in value or "\\" in value or value in (".", ".."):
        raise ValueError("must be a file name without / or \\")
    return value


FileName = Annotated[OneLine, Field(min_length=1, max_length=255), AfterValidator(_no_directories)]
CONTENT_TYPE_PATTERN = r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$"
ContentType = Annotated[str, Field(pattern=CONTENT_TYPE_PATTERN)]


class Recipient(StrictModel):
    name: Annotated[OneLine, Field(max_length=200)] | None = None
    email: EmailAddress


class InlineAttachment(StrictModel):
    """A small attachment given in the request itself."""

    filename: FileName
    content_type: ContentType = "application/octet-stream"
    content_base64: str = Field(max_length=MAX_INLINE_BYTES * 4 // 3 + 4)
    content_id: Annotated[OneLine, Field(max_length=200)] | None = Field(
        None, description="Set to show the part inline in the HTML (`cid:` URL)."
    )

    def content(self) -> bytes:
        try:
            return base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("content_base64 is not base64") from exc


class UploadAttachment(StrictModel):
    """An attachment uploaded before (``POST /v1/accounts/{id}/uploads``), by its id; usable
    by any number of messages and drafts of the account until it expires."""

    upload_id: str = Field(max_length=100, description="The id the upload answered (`upl_…`).")
    filename: FileName | None = Field(None, description="Default: the uploaded file's name.")
    content_id: Annotated[OneLine, Field(max_length=200)] | None = Field(
        None, description="Set to show the part inline in the HTML (`cid:` URL)."
    )


def _attachment_kind(value: object) -> str:
    """Which shape an entry of ``attachments`` has: an upload is named by ``upload_id``."""
    if isinstance(value, UploadAttachment) or (isinstance(value, dict) and "upload_id" in value):
        return "upload"
    return "inline"


Attachment = Annotated[
    Annotated[InlineAttachment, Tag("inline")] | Annotated[UploadAttachment, Tag("upload")],
    Discriminator(_attachment_kind),
]


def _safe_headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name) or name.lower() not in ALLOWED_HEADERS:
            raise ValueError(
                f"header {name!r} is not allowed; allowed: {', '.join(sorted(ALLOWED_HEADERS))}"
            )
        if _LINE_BREAK.search(text) or len(text) > 998:
            raise ValueError(f"header {name!r} must be one line of at most 998 characters")
    return value


class DraftRequest(StrictModel):
    """A message being written: any part may still be missing (a draft without
    recipients is a draft)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Recipient | None = Field(
        None, alias="from", description="Default: the account's address (its username)."
    )
    to: list[Recipient] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    cc: list[Recipient] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    bcc: list[Recipient] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Receive the message; never appear in its headers.",
    )
    reply_to: list[Recipient] = Field(default_factory=list, max_length=10)
    subject: Annotated[OneLine, Field(max_length=998)] = ""
    text: str | None = Field(None, max_length=10_000_000)
    html: str | None = Field(None, max_length=10_000_000)
    attachments: list[Attachment] = Field(
        default_factory=list,
        max_length=100,
        description="Each inline (`content_base64`) or uploaded before (`upload_id`); "
        "together at most `MAILGATE_MAX_UPLOAD_BYTES` decoded.",
    )
    headers: Annotated[dict[str, str], AfterValidator(_safe_headers)] = Field(
        default_factory=dict, description="Extra headers from an allow-list (List-Unsubscribe…)."
    )
    reply_to_message_id: str | None = Field(
        None,
        max_length=2100,
        description="Answer this message: In-Reply-To and References from it, `Re: ` once, "
        "and (without `to`) its sender as the recipient; it gets `answered` once sent.",
    )
    reply_all: bool = Field(False, description="With a reply: its To and Cc too, not you.")
    forward_message_id: str | None = Field(
        None,
        max_length=2100,
        description="Forward this message, attached whole (`Fwd: `); it gets the "
        "`$Forwarded` keyword once sent.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DraftRequest:
        if self.reply_to_message_id and self.forward_message_id:
            raise ValueError("give `reply_to_message_id` or `forward_message_id`, not both")
        if self.reply_all and not self.reply_to_message_id:
            raise ValueError("`reply_all` needs `reply_to_message_id`")
        if len(self.to) + len(self.cc) + len(self.bcc) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients in all")
        total = 0
        for attachment in self.attachments:
            if isinstance(attachment, InlineAttachment):
                total += len(attachment.content())
        if total > MAX_INLINE_BYTES:
            raise ValueError(f"inline attachments are limited to {MAX_INLINE_BYTES} bytes")
        return self


class ComposeRequest(DraftRequest):
    """A message to send now: with recipients (or a message to reply to) and content."""

    model_config = examples(ex.COMPOSE)

    @model_validator(mode="after")
    def _deliverable(self) -> ComposeRequest:
        if not (self.to or self.cc or self.bcc or self.reply_to_message_id):
            raise ValueError("give at least one recipient in `to`, `cc` or `bcc`")
        nothing = self.text is None and self.html is None and not self.attachments
        if nothing and not self.forward_message_id:
            raise ValueError("give `text`, `html` or an attachment")
        return self


SubmissionStatus = TypeAliasType("SubmissionStatus", Literal["queued", "sending", "sent", "failed"])


class SubmissionOut(ResponseModel):
    model_config = examples(ex.SUBMISSION)

    id: str
    account_id: str
    status: SubmissionStatus
    message_id: str = Field(description="The Message-ID header of the message sent.")
    recipients: list[str] = Field(description="Envelope recipients (to, cc and bcc).")
    attempts: int
    smtp_code: int | None = Field(description="The SMTP server's last reply code.")
    smtp_response: str | None = Field(description="The SMTP server's last words.")
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SubmissionList(ResponseModel):
    items: list[SubmissionOut]


class SmtpSettings(StrictModel):
    """Where the account sends mail. Credentials default to the mailbox's (its password, or
    its OAuth2 token)."""

    host: Host
    port: Port | None = Field(None, description="Default: 587 (starttls), 465 (tls), 25 (none).")
    security: Security = "starttls"
    tls_verify: bool = True
    username: Username | None = Field(None, description="Default: the mailbox's username.")
    password: Password | None = Field(None, description="Default: the mailbox's credentials.")
    save_sent_copy: bool = Field(
        True,
        description="Put a copy of each sent message in the Sent folder; turn off where the "
        "provider does it itself (Gmail).",
    )


class SmtpSettingsOut(ResponseModel):
    host: str
    port: int
    security: Security
    tls_verify: bool
    username: str
    has_own_password: bool
    save_sent_copy: bool
