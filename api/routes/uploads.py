"""Attachment uploads: multipart in, streamed to disk, stored for a day; thin over
gateway.uploads (the multipart reading is the HTTP edge's, api.multipart)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Request, Response, status

from mailgate.api.deps import AccountId, GatewayDep, TenantId
from mailgate.api.multipart import receive_file
from mailgate.api.schemas.common import problem_responses
from mailgate.domain.uploads import UploadOut
from mailgate.gateway import uploads

router = APIRouter(
    prefix="/v1/accounts/{account_id}",
    tags=["uploads"],
    responses=problem_responses(401, 404, 422),
)
# The one route whose body may be larger than MAILGATE_MAX_BODY_BYTES (api.middleware).
UPLOAD_PATH = re.compile(r"/v1/accounts/[^/]+/uploads/?")
UploadId = Annotated[str, Path(description="Opaque upload id (`upl_…`).")]
FILE_FIELD = "file"
_MULTIPART_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "title": "UploadForm",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "The file: its part's `filename` (1-255 characters, no "
                        "`/`, `\\`, CR, LF or NUL) and `Content-Type` (default "
                        "`application/octet-stream`) are kept with it.",
                    }
                },
            },
        }
    },
}


@router.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    summary="Upload an attachment (multipart) to send or draft by its id",
    description="A `multipart/form-data` body with one `file` part, streamed to disk and "
    'stored for 24 hours; name it in `attachments` as `{"upload_id": ...}` of any number of '
    "sends and drafts of this account. Over `MAILGATE_MAX_UPLOAD_BYTES` it is refused with "
    "`413 payload-too-large` and nothing is stored; another media type is `415 "
    "unsupported-media-type`, a broken multipart body `400 invalid-multipart`, no `file` part "
    "or a bad file name `422 validation-error`.",
    openapi_extra={"requestBody": _MULTIPART_BODY},
    responses=problem_responses(400, 413, 415),
)
async def create_upload(
    account_id: AccountId, request: Request, gw: GatewayDep, tenant_id: TenantId
) -> UploadOut:
    await anyio.to_thread.run_sync(uploads.check_account, gw, tenant_id, account_id)
    limit, spool = gw.settings.max_upload_bytes, gw.settings.data_dir / "uploads"
    async with receive_file(request, FILE_FIELD, limit, spool) as received:
        return await anyio.to_thread.run_sync(
            uploads.create_upload, gw, tenant_id, account_id, received
        )


@router.get(
    "/uploads/{upload_id}",
    response_model=UploadOut,
    summary="An upload's name, type, size and hash (until it expires)",
)
def get_upload(
    account_id: AccountId, upload_id: UploadId, gw: GatewayDep, tenant_id: TenantId
) -> UploadOut:
    return uploads.get_upload(gw, tenant_id, account_id, upload_id)


@router.delete(
    "/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an upload (messages already sent or drafted keep their copy)",
)
def delete_upload(
    account_id: AccountId, upload_id: UploadId, gw: GatewayDep, tenant_id: TenantId
) -> Response:
    uploads.delete_upload(gw, tenant_id, account_id, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
