"""Attachment uploads: stored in the database (every process sharing it can send them),
scoped to one account of one tenant, gone after a day; and the attachments of a compose
request resolved to their content (inline ones decoded, uploads read back).

The HTTP edge spools the file to disk while it counts and hashes it; storing it is then one
short transaction, which also removes the uploads that have expired.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from mailgate.adapters.sending import AttachmentPart
from mailgate.domain.errors import InvalidRequest, NotFound
from mailgate.domain.ids import is_valid_id, new_id
from mailgate.domain.sending import InlineAttachment, UploadAttachment
from mailgate.domain.uploads import UPLOAD_LIFETIME, UPLOAD_PREFIX, ReceivedFile, UploadOut
from mailgate.gateway.accounts import load_account
from mailgate.gateway.context import Gateway
from mailgate.store.db import session_scope
from mailgate.store.models import Account, Upload, as_utc, utcnow

_READ_CHUNK = 1024 * 1024


def check_account(gw: Gateway, tenant_id: str, account_id: str) -> None:
    """404 before a byte of the file is read, for an account the tenant does not have."""
    with Session(gw.engine) as session:
        load_account(session, tenant_id, account_id)


def create_upload(
    gw: Gateway, tenant_id: str, account_id: str, received: ReceivedFile
) -> UploadOut:
    content = bytearray()
    while chunk := received.file.read(_READ_CHUNK):
        content += chunk
    now = utcnow()
    upload = Upload(
        id=new_id(UPLOAD_PREFIX),
        tenant_id=tenant_id,
        account_id=account_id,
        filename=received.filename,
        content_type=received.content_type,
        size=received.size,
        sha256=received.sha256,
        content=bytes(content),
        created_at=now,
        expires_at=now + UPLOAD_LIFETIME,
    )
    with session_scope(gw.engine) as session:
        load_account(session, tenant_id, account_id)  # not deleted meanwhile
        session.execute(delete(Upload).where(col(Upload.expires_at) <= now))
        session.add(upload)
        out = to_out(upload)
    return out


def get_upload(gw: Gateway, tenant_id: str, account_id: str, upload_id: str) -> UploadOut:
    with Session(gw.engine) as session:
        load_account(session, tenant_id, account_id)
        return to_out(_load(session, account_id, upload_id))


def delete_upload(gw: Gateway, tenant_id: str, account_id: str, upload_id: str) -> None:
    with session_scope(gw.engine) as session:
        load_account(session, tenant_id, account_id)
        session.delete(_load(session, account_id, upload_id))


def attachment_parts(
    gw: Gateway, account: Account, attachments: Sequence[InlineAttachment | UploadAttachment]
) -> list[AttachmentPart]:
    """Each attachment with its content, in order. An upload id the account has no
    unexpired upload of is a 422 naming ``attachments[i].upload_id``; together they may
    come to ``max_upload_bytes``."""
    wanted = {a.upload_id for a in attachments if isinstance(a, UploadAttachment)}
    uploads: dict[str, Upload] = {}
    if wanted:
        with Session(gw.engine) as session:
            rows = session.exec(
                select(Upload)
                .options(defer(Upload.content))  # type: ignore[arg-type]
                .where(
                    col(Upload.id).in_(wanted),
                    Upload.account_id == account.id,
                    Upload.tenant_id == account.tenant_id,
                    col(Upload.expires_at) > utcnow(),
                )
            ).all()
            uploads = {row.id: row for row in rows}
    total = 0
    for index, attachment in enumerate(attachments):
        if isinstance(attachment, UploadAttachment):
            row = uploads.get(attachment.upload_id)
            if row is None:
                raise _no_upload(attachment, index)
            total += row.size
        else:
            total += len(attachment.content())
    limit = gw.settings.max_upload_bytes
    if total > limit:
        raise InvalidRequest(
            f"the attachments come to {total} bytes; a message may carry at most {limit} "
            "(MAILGATE_MAX_UPLOAD_BYTES)",
            ("body", "attachments"),
        )
    contents = _contents(gw, list(uploads))
    parts = []
    for index, attachment in enumerate(attachments):
        if isinstance(attachment, InlineAttachment):
            parts.append(AttachmentPart.inline(attachment))
            continue
        row = uploads[attachment.upload_id]
        if row.id not in contents:  # deleted this very moment
            raise _no_upload(attachment, index)
        parts.append(
            AttachmentPart(
                attachment.filename or row.filename,
                row.content_type,
                contents[row.id],
                attachment.content_id,
            )
        )
    return parts


def _no_upload(attachment: UploadAttachment, index: int) -> InvalidRequest:
    return InvalidRequest(
        f"`upload_id` {attachment.upload_id!r} names no upload of this account "
        "(unknown, deleted or expired)",
        ("body", "attachments", index, "upload_id"),
    )


def _contents(gw: Gateway, upload_ids: list[str]) -> dict[str, bytes]:
    if not upload_ids:
        return {}
    with Session(gw.engine) as session:
        rows = session.exec(
            select(Upload.id, Upload.content).where(col(Upload.id).in_(upload_ids))
        ).all()
    return {upload_id: content for upload_id, content in rows}


def _load(session: Session, account_id: str, upload_id: str) -> Upload:
    row = (
        session.exec(
            select(Upload)
            .options(defer(Upload.content))  # type: ignore[arg-type]
            .where(Upload.id == upload_id, col(Upload.expires_at) > utcnow())
        ).first()
        if is_valid_id(upload_id, UPLOAD_PREFIX)
        else None
    )
    if row is None or row.account_id != account_id:
        raise NotFound("upload")
    return row


def to_out(row: Upload) -> UploadOut:
    return UploadOut(
        id=row.id,
        account_id=row.account_id,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
    )
