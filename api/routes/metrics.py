"""Prometheus metrics (text format 0.0.4), without an API key: like /healthz it is meant
for the load balancer's network and the scraper, never for the internet."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from mailgate.api.deps import GatewayDep
from mailgate.api.routes.health import PUBLIC
from mailgate.api.schemas.common import problem_responses
from mailgate.gateway.metrics import CONTENT_TYPE, MEDIA_TYPE

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    description="Requests, mailbox commands by server, watchers, the webhook outbox, POP3 "
    "syncs and the process, in the Prometheus text format. No API key: serve it to the "
    "scraper only (behind the load balancer), never to the internet.",
    responses={
        200: {
            "description": "The metrics, Prometheus text exposition format 0.0.4.",
            "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **problem_responses(500),
    },
    openapi_extra=PUBLIC,
)
def metrics(gw: GatewayDep) -> Response:
    # A plain def: FastAPI runs it in a worker thread, where the outbox COUNT may block.
    return Response(gw.metrics.render(), media_type=CONTENT_TYPE)
