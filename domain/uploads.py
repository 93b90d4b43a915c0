"""Attachment uploads: a file sent once as multipart (``POST /v1/accounts/{id}/uploads``),
kept for a day, and named by its id in the ``attachments`` of any number of sends and drafts
of the same account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from pydantic import Field, TypeAdapter, ValidationError

from mailgate.domain.base import ResponseModel
from mailgate.domain.sending import ContentType, FileName

UPLOAD_PREFIX = "upl"
UPLOAD_LIFETIME = timedelta(hours=24)
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_FILE_NAME: TypeAdapter[str] = TypeAdapter(FileName)
_CONTENT_TYPE: TypeAdapter[str] = TypeAdapter(ContentType)


def check_file_name(value: str) -> str:
    """The name as an attachment's ``filename`` takes it (1-255 characters, no CR, LF, NUL,
    ``/`` or ``\\``); ValueError with the reason otherwise."""
    try:
        return _FILE_NAME.validate_python(value)
    except ValidationError as exc:
        raise ValueError(f"the file name {exc.errors()[0]['msg'].lower()}") from None


def check_content_type(value: str) -> str:
    """A ``type/subtype`` media type, as an attachment's ``content_type``; ValueError else."""
    try:
        return _CONTENT_TYPE.validate_python(value)
    except ValidationError:
        raise ValueError(f"the content type {value!r} is not type/subtype") from None


@dataclass(frozen=True)
class ReceivedFile:
    """A file part as the HTTP edge received it: spooled to a temporary file on disk
    (``file``, at its start), counted and hashed on the way."""

    file: BinaryIO
    filename: str
    content_type: str
    size: int
    sha256: str


class UploadOut(ResponseModel):
    id: str = Field(description="Name it as `upload_id` in a message's `attachments`.")
    account_id: str
    filename: str
    content_type: str
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="SHA-256 of the content, hex.")
    created_at: datetime
    expires_at: datetime = Field(description="After this the upload is gone (24 hours).")
