"""/v1/accounts/{account_id}/folders: thin endpoints over gateway.messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from mailgate.api.conditional import ETAG_HEADER, NOT_MODIFIED, conditional_json
from mailgate.api.deps import AccountId, GatewayDep, TenantId
from mailgate.api.schemas.common import BODY_ERRORS, MAILBOX_ERRORS, problem_responses
from mailgate.api.schemas.mail import FolderCreate, FolderList, FolderUpdate
from mailgate.domain.mail import Folder
from mailgate.gateway import messages

router = APIRouter(
    prefix="/v1/accounts/{account_id}/folders",
    tags=["folders"],
    responses={**problem_responses(401, 404, 422), **MAILBOX_ERRORS},
)
FolderId = Annotated[str, Path(description="Opaque folder id.")]


@router.get(
    "",
    response_model=FolderList,
    summary="List folders with roles and counts",
    description="With an `ETag`: `If-None-Match` answers `304` while no folder, name or count "
    "has changed.",
    responses={**NOT_MODIFIED, 200: {"headers": ETAG_HEADER}},
)
def list_folders(
    request: Request, account_id: AccountId, gw: GatewayDep, tenant_id: TenantId
) -> Response:
    folders = FolderList(items=messages.list_folders(gw, tenant_id, account_id))
    return conditional_json(request, folders)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Folder,
    summary="Create a folder",
    responses={**problem_responses(409), **BODY_ERRORS},
)
def create_folder(
    account_id: AccountId, body: FolderCreate, gw: GatewayDep, tenant_id: TenantId
) -> Folder:
    return messages.create_folder(gw, tenant_id, account_id, body.name, body.parent_id)


@router.patch(
    "/{folder_id}",
    response_model=Folder,
    summary="Rename or move a folder",
    description="On IMAP a folder's id follows its path, so a rename answers a new id; on "
    "POP3 accounts (folders kept by Mailgate) the id stays. Use the id in the answer.",
    responses={**problem_responses(409), **BODY_ERRORS},
)
def update_folder(
    account_id: AccountId,
    folder_id: FolderId,
    body: FolderUpdate,
    gw: GatewayDep,
    tenant_id: TenantId,
) -> Folder:
    return messages.rename_folder(
        gw,
        tenant_id,
        account_id,
        folder_id,
        body.name,
        body.parent_id,
        parent_given="parent_id" in body.model_fields_set,
    )


@router.delete(
    "/{folder_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a folder and the messages in it",
)
def delete_folder(
    account_id: AccountId, folder_id: FolderId, gw: GatewayDep, tenant_id: TenantId
) -> Response:
    messages.delete_folder(gw, tenant_id, account_id, folder_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
