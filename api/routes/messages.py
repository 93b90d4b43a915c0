"""/v1/accounts/{account_id}/messages: thin endpoints over gateway.messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from mailgate.api.conditional import ETAG_HEADER, NOT_MODIFIED, conditional_json
from mailgate.api.deps import AccountId, GatewayDep, TenantId
from mailgate.api.schemas.common import BODY_ERRORS, MAILBOX_ERRORS, problem_responses
from mailgate.api.schemas.mail import BatchRequest, BatchResponse, CopyRequest, MessageUpdate
from mailgate.domain.mail import Download, Message, MessageFilter, MessagePage, MessageSummary
from mailgate.gateway import messages

router = APIRouter(
    prefix="/v1/accounts/{account_id}/messages",
    tags=["messages"],
    responses={**problem_responses(401, 404, 422), **MAILBOX_ERRORS},
)
OCTET_STREAM = "application/octet-stream"
MessageId = Annotated[str, Path(description="Opaque message id.")]
AttachmentId = Annotated[str, Path(description="Attachment id from the message's `attachments`.")]


def _binary(description: str, served: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A streamed answer: bytes of the media type ``served``, or `application/octet-stream`
    for a client that accepts only that (see :func:`_stream`). Client generators read that
    type as bytes: openapi-python-client gives `bytes`, openapi-typescript a binary string
    (read it as a Blob)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {served: binary, OCTET_STREAM: binary}
    return {"description": description, "content": content, "headers": headers or {}}


# Search strings reach the mail server as literals, which cannot carry NUL (RFC 3501 CHAR8).
SearchText = Annotated[
    str | None,
    Query(max_length=500, pattern=r"^[^\x00]*$", description="Contains this (no NUL)."),
]


@router.get(
    "",
    response_model=MessagePage,
    summary="List one folder's messages, newest first",
    description="Filters combine with AND. `since`/`before` compare the arrival time: the "
    "exact time on POP3 accounts, the arrival day on IMAP (IMAP SEARCH has day granularity). "
    "Pass `next_cursor` back as `cursor` for the next page; it stays exact while mail "
    "arrives (`invalid-cursor` 422 for a cursor of other filters, `cursor-expired` 410 "
    "when the folder was reset on the server).",
    responses={**problem_responses(410), **NOT_MODIFIED, 200: {"headers": ETAG_HEADER}},
)
def list_messages(
    request: Request,
    account_id: AccountId,
    gw: GatewayDep,
    tenant_id: TenantId,
    folder_id: Annotated[str | None, Query(description="Default: the inbox.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    unread: bool | None = None,
    flagged: bool | None = None,
    from_: Annotated[
        str | None,
        Query(alias="from", max_length=500, pattern=r"^[^\x00]*$", description="No NUL."),
    ] = None,
    to: SearchText = None,
    subject: SearchText = None,
    text: SearchText = None,
    since: datetime | None = None,
    before: datetime | None = None,
) -> Response:
    filters = MessageFilter(
        unread=unread,
        flagged=flagged,
        from_=from_,
        to=to,
        subject=subject,
        text=text,
        since=since,
        before=before,
    )
    page = messages.list_messages(gw, tenant_id, account_id, folder_id, filters, limit, cursor)
    return conditional_json(request, page)


@router.post(
    "/batch",
    response_model=BatchResponse,
    summary="Change, move or delete many messages at once",
    description="Each id answers on its own: `status` 200, or 404 for an unknown id.",
    responses={**problem_responses(409), **BODY_ERRORS},
)
def batch(
    account_id: AccountId, body: BatchRequest, gw: GatewayDep, tenant_id: TenantId
) -> BatchResponse:
    change = body.to_change()
    results = messages.batch(
        gw,
        tenant_id,
        account_id,
        body.ids,
        None if change.is_empty() else change,
        body.folder_id,
        body.delete,
        body.permanent,
    )
    return BatchResponse(items=results)


@router.get(
    "/{message_id}",
    response_model=Message,
    summary="Read one whole message",
    description="With an `ETag`: `If-None-Match` answers `304` while the message and its "
    "flags are unchanged.",
    responses={**NOT_MODIFIED, 200: {"headers": ETAG_HEADER}},
)
def get_message(
    request: Request,
    account_id: AccountId,
    message_id: MessageId,
    gw: GatewayDep,
    tenant_id: TenantId,
    mark_seen: Annotated[bool, Query(description="Also mark it read.")] = False,
) -> Response:
    message = messages.get_message(gw, tenant_id, account_id, message_id, mark_seen)
    return conditional_json(request, message)


def _media_type(accept: str | None, own: str) -> str:
    """The part's own type, unless the client's `Accept` names `application/octet-stream`
    and neither that type nor a wildcard covering it (RFC 9110 section 12.5.1, without
    weights: the only choice is between the two)."""
    ranges = {r.split(";")[0].strip().lower() for r in (accept or "").split(",")}
    covered = {own, own.split("/")[0] + "/*", "*/*"} & ranges
    return OCTET_STREAM if OCTET_STREAM in ranges and not covered else own


def _stream(
    request: Request, download: Download, chunks: Iterator[bytes], attachment: bool
) -> StreamingResponse:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"}
    if download.size is not None and not attachment:
        headers["Content-Length"] = str(download.size)
    if attachment:
        name = download.filename or "attachment"
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
    media_type = _media_type(request.headers.get("accept"), download.content_type)
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


@router.get(
    "/{message_id}/raw",
    response_class=StreamingResponse,
    summary="The RFC 5322 source, streamed",
    description="The message byte for byte, as `message/rfc822`; as "
    "`application/octet-stream` to a client whose `Accept` names only that.",
    responses={
        200: _binary("The RFC 5322 source (`Content-Type: message/rfc822`).", "message/rfc822")
    },
)
def get_raw(
    request: Request,
    account_id: AccountId,
    message_id: MessageId,
    gw: GatewayDep,
    tenant_id: TenantId,
) -> StreamingResponse:
    download, chunks = messages.stream_raw(gw, tenant_id, account_id, message_id)
    return _stream(request, download, chunks, attachment=False)


@router.get(
    "/{message_id}/attachments/{attachment_id}",
    response_class=StreamingResponse,
    summary="One attachment, decoded and streamed",
    description="The body is the attachment's own media type (its `content_type`, e.g. "
    "`application/pdf`), offered as a download (`Content-Disposition: attachment`); "
    "`application/octet-stream` to a client whose `Accept` names only that.",
    responses={
        200: _binary(
            "The decoded attachment; `Content-Type` is its own media type.",
            "*/*",
            {
                "Content-Disposition": {
                    "description": "`attachment`, with the file name as `filename*`.",
                    "schema": {"type": "string"},
                }
            },
        )
    },
)
def get_attachment(
    request: Request,
    account_id: AccountId,
    message_id: MessageId,
    attachment_id: AttachmentId,
    gw: GatewayDep,
    tenant_id: TenantId,
) -> StreamingResponse:
    download, chunks = messages.stream_attachment(
        gw, tenant_id, account_id, message_id, attachment_id
    )
    return _stream(request, download, chunks, attachment=True)


@router.patch(
    "/{message_id}",
    response_model=MessageSummary,
    summary="Change flags and keywords, or move",
    description="A move keeps the id where the server reports the new UID (UIDPLUS).",
    responses=BODY_ERRORS,
)
def update_message(
    account_id: AccountId,
    message_id: MessageId,
    body: MessageUpdate,
    gw: GatewayDep,
    tenant_id: TenantId,
) -> MessageSummary:
    return messages.update_message(
        gw, tenant_id, account_id, message_id, body.to_change(), body.folder_id
    )


@router.post(
    "/{message_id}/copy",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageSummary,
    summary="Copy a message into another folder",
    responses=BODY_ERRORS,
)
def copy_message(
    account_id: AccountId,
    message_id: MessageId,
    body: CopyRequest,
    gw: GatewayDep,
    tenant_id: TenantId,
) -> MessageSummary:
    return messages.copy_message(gw, tenant_id, account_id, message_id, body.folder_id)


@router.delete(
    "/{message_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a message: to the trash, or for good with permanent=true",
    responses=problem_responses(409),
)
def delete_message(
    account_id: AccountId,
    message_id: MessageId,
    gw: GatewayDep,
    tenant_id: TenantId,
    permanent: bool = False,
) -> Response:
    messages.delete_message(gw, tenant_id, account_id, message_id, permanent)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
