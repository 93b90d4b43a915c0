"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

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
    summary="Readiness: the database answers",
    responses=problem_responses(503),
    openapi_extra=PUBLIC,
)
def readyz(gw: GatewayDep) -> Health:
    try:
        with gw.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ProblemException(503, "not-ready", "The database is not reachable.") from exc
    return Health(status="ok")
