"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mailgate.api.deps import GatewayDep
from mailgate.api.problems import ProblemException
from mailgate.api.schemas.common import problem_responses
from mailgate.domain.base import ResponseModel

router = APIRouter(tags=["health"])
PUBLIC: dict[str, Any] = {"security": []}  # no API key: load balancers and orchestrators call these


class Health(ResponseModel):
    status: str


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness: the process answers",
    responses=problem_responses(500),
    openapi_extra=PUBLIC,
)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: the database answers, at this version's schema",
    description="`503 not-ready` while the database cannot be reached, or while its schema "
    "is not the one this version runs on (migrations running or pending: `mailgate migrate`).",
    responses=problem_responses(503),
    openapi_extra=PUBLIC,
)
def readyz(gw: GatewayDep) -> Health:
    try:
        behind = gw.schema_behind()
    except Exception as exc:
        raise ProblemException(503, "not-ready", "The database is not reachable.") from exc
    if behind is not None:
        raise ProblemException(503, "not-ready", behind)
    return Health(status="ok")
