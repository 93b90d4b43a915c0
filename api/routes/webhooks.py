"""/v1/webhooks: thin endpoints over gateway.webhooks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from mailgate.api.deps import GatewayDep, TenantId
from mailgate.api.schemas.common import BODY_ERRORS, problem_responses
from mailgate.domain.webhooks import (
    DeliveryList,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookSecret,
    WebhookUpdate,
)
from mailgate.gateway import webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=problem_responses(401, 422))
WebhookId = Annotated[str, Path(description="Opaque webhook endpoint id.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    summary="Add a webhook endpoint",
    description="Answers the endpoint with its signing `secret` (generated when none is "
    "given). Deliveries are signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, "
    "`webhook-signature`). A URL on a loopback, private or otherwise non-public address, or "
    "a name that does not resolve, is a `validation-error` (422) unless the server allows "
    "private webhooks.",
    responses=BODY_ERRORS,
)
def create_webhook(body: WebhookCreate, gw: GatewayDep, tenant_id: TenantId) -> WebhookCreated:
    return webhooks.create_webhook(gw, tenant_id, body)


@router.get("", response_model=WebhookList, summary="List the tenant's webhook endpoints")
def list_webhooks(gw: GatewayDep, tenant_id: TenantId) -> WebhookList:
    return WebhookList(items=webhooks.list_webhooks(gw, tenant_id))


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="Read one webhook endpoint (without its secret)",
    responses=problem_responses(404),
)
def get_webhook(webhook_id: WebhookId, gw: GatewayDep, tenant_id: TenantId) -> WebhookOut:
    return webhooks.get_webhook(gw, tenant_id, webhook_id)


@router.get(
    "/{webhook_id}/secret",
    response_model=WebhookSecret,
    summary="Read a webhook endpoint's signing secret",
    responses=problem_responses(404),
)
def get_webhook_secret(webhook_id: WebhookId, gw: GatewayDep, tenant_id: TenantId) -> WebhookSecret:
    return webhooks.get_secret(gw, tenant_id, webhook_id)


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="Change a webhook endpoint, or re-enable it",
    description="`enabled: true` re-enables an endpoint disabled after repeated failures; "
    "its pending events are then delivered, oldest first.",
    responses={**BODY_ERRORS, **problem_responses(404)},
)
def update_webhook(
    webhook_id: WebhookId, body: WebhookUpdate, gw: GatewayDep, tenant_id: TenantId
) -> WebhookOut:
    return webhooks.update_webhook(gw, tenant_id, webhook_id, body)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a webhook endpoint with its pending events and delivery records",
    responses=problem_responses(404),
)
def delete_webhook(webhook_id: WebhookId, gw: GatewayDep, tenant_id: TenantId) -> Response:
    webhooks.delete_webhook(gw, tenant_id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="List delivery attempts, newest first",
    description="One item per attempt: the receiver's status and the start of its answer, "
    "or the error. Pass `next_cursor` back as `cursor` for the next page.",
    responses=problem_responses(404),
)
def list_deliveries(
    webhook_id: WebhookId,
    gw: GatewayDep,
    tenant_id: TenantId,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DeliveryList:
    return webhooks.list_deliveries(gw, tenant_id, webhook_id, limit, cursor)
