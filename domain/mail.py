"""The shapes every adapter returns and takes: folders, message summaries, changes.

A plain-JSON cousin of JMAP (RFC 8621): opaque ids, a folder ``role``, flags as booleans
plus free ``keywords``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from mailgate.domain import examples as ex
from mailgate.domain.base import ResponseModel
from mailgate.domain.endpoint import SyncState
from mailgate.domain.examples import examples


class EmailAddress(ResponseModel):
    """One mailbox from an address header (RFC 5322 §3.4), display name decoded."""

    name: str | None = Field(
        None, description="Display name, RFC 2047-decoded; null when the header gives none."
    )
    email: str = Field(
        description="Address as given (addr-spec, no angle brackets). Empty for an empty "
        "group such as 'undisclosed-recipients:;' (then `name` is the group name) or for an "
        "unparseable entry (then `name` holds the raw text)."
    )


class AttachmentInfo(ResponseModel):
    """A MIME part that is not rendered as message body text (RFC 2183, RFC 2387)."""

    id: str = Field(
        description="Part path inside the message: dotted 1-based IMAP part numbers "
        "(RFC 3501 §6.4.5), e.g. '2' or '2.1'. Stable for a given message; pass it back "
        "to fetch the attachment."
    )
    filename: str | None = Field(
        None,
        description="File name from Content-Disposition filename (RFC 2231-decoded) or "
        "Content-Type name; directory parts removed. For an attached message without one, "
        "its subject plus '.eml'.",
    )
    content_type: str = Field(description="Lower-case MIME type, e.g. 'application/pdf'.")
    size: int = Field(ge=0, description="Size in bytes after transfer decoding (base64 etc.).")
    content_id: str | None = Field(
        None, description="Content-ID without angle brackets, used by 'cid:' URLs in HTML."
    )
    inline: bool = Field(
        description="True when the part is meant to be shown inside the body: it is "
        "referenced from the HTML via 'cid:', has Content-Disposition: inline, or has a "
        "Content-ID inside multipart/related without any disposition."
    )


FolderRole = TypeAliasType(
    "FolderRole", Literal["inbox", "sent", "drafts", "trash", "junk", "archive"]
)


class Folder(ResponseModel):
    model_config = examples(ex.FOLDER)

    id: str = Field(description="Opaque folder id.")
    name: str = Field(description="The last segment of the path, decoded to Unicode.")
    path: str = Field(description="The full path, segments joined by `delimiter`.")
    delimiter: str | None = Field(description="Hierarchy separator of the server.")
    parent_id: str | None = Field(description="Id of the parent folder; null at the top.")
    role: FolderRole | None = Field(
        description="Special use (RFC 6154), from flags or common names."
    )
    total: int = Field(description="Messages in the folder.")
    unread: int = Field(description="Messages without the seen flag.")


class Flags(ResponseModel):
    seen: bool = False
    flagged: bool = False
    answered: bool = False
    draft: bool = False


class MessageSummary(ResponseModel):
    """What a message list shows; also the payload of message webhooks."""

    model_config = ConfigDict(
        populate_by_name=True, serialize_by_alias=True, **examples(ex.MESSAGE_SUMMARY)
    )

    id: str = Field(description="Opaque message id; stable for the life of the message.")
    folder_id: str = Field(description="The folder the message is in.")
    subject: str | None = None
    from_: list[EmailAddress] = Field(default_factory=list, alias="from")
    to: list[EmailAddress] = Field(default_factory=list)
    cc: list[EmailAddress] = Field(default_factory=list)
    date: datetime | None = Field(None, description="The Date header (else arrival time).")
    received_at: datetime | None = Field(None, description="When the server received it.")
    size: int = Field(description="Size of the RFC 5322 source in bytes.")
    flags: Flags
    keywords: list[str] = Field(default_factory=list, description="Other flags (keywords).")
    has_attachments: bool = False
    preview: str = Field("", description="The start of the plain-text body.")


class Message(MessageSummary):
    """One whole message: summary fields plus everything the MIME parser decodes."""

    model_config = examples(ex.MESSAGE)

    bcc: list[EmailAddress] = Field(default_factory=list)
    reply_to: list[EmailAddress] = Field(default_factory=list)
    message_id: str | None = Field(None, description="Message-ID, without angle brackets.")
    in_reply_to: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    text: str | None = None
    html: str | None = Field(None, description="The HTML body as sent; not sanitized.")
    attachments: list[AttachmentInfo] = Field(default_factory=list)


class MessageFilter(BaseModel):
    """Search filters; all given ones must match (AND)."""

    unread: bool | None = None
    flagged: bool | None = None
    from_: str | None = None
    to: str | None = None
    subject: str | None = None
    text: str | None = None
    since: datetime | None = None
    before: datetime | None = None


class MessagePage(ResponseModel):
    items: list[MessageSummary]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page.")
    sync_state: SyncState = Field(
        "running",
        description="`initializing`: the account's first sync has not finished (a POP3 "
        "account still downloading its mailbox, or cut short and not yet resumed), so this "
        "list may lack messages that are on the server; the account's `sync_progress` says "
        "how far it got. `running`: the list is all there is (always on IMAP).",
    )


class MessageChange(BaseModel):
    """Flag and keyword changes; None leaves a flag as it is."""

    seen: bool | None = None
    flagged: bool | None = None
    answered: bool | None = None
    draft: bool | None = None
    keywords_add: list[str] = Field(default_factory=list)
    keywords_remove: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        flags = (self.seen, self.flagged, self.answered, self.draft)
        return all(f is None for f in flags) and not self.keywords_add and not self.keywords_remove


class Download(BaseModel):
    """Describes a stream: what the client receives before the bytes."""

    content_type: str
    filename: str | None = None
    size: int | None = None


class BatchResult(ResponseModel):
    id: str = Field(description="The message id as sent.")
    status: int = Field(description="200 when done, 404 when no such message.")
    message_id: str | None = Field(None, description="The id after the change, when kept.")
