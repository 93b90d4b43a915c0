"""Shapes shared by every resource: problem details."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mailgate.api.problems import ProblemType
from mailgate.domain.base import ResponseModel


class FieldError(ResponseModel):
    loc: list[str | int] = Field(description="Where in the request the problem is.")
    msg: str = Field(description="What is wrong.")
    type: str = Field(description="A machine-readable error code.")


class Problem(BaseModel):
    """An RFC 9457 problem details object (`application/problem+json`). `detail`,
    `request_id` and `errors` are sent when there is something to say."""

    type: ProblemType = Field(description="Stable problem type: switch on it.")
    title: str = Field(description="Short human summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(None, description="What happened in this case.")
    request_id: str | None = Field(None, description="The request id, to quote to an operator.")
    errors: list[FieldError] | None = Field(None, description="Per-field validation errors.")

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "not-found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "No such message.",
                    "request_id": "4f0c2a9e1b7d4c3a",
                },
                {
                    "type": "validation-error",
                    "title": "Validation error",
                    "status": 422,
                    "detail": "The request does not match the schema; see `errors`.",
                    "request_id": "9b1e5d0c7a2f4e68",
                    "errors": [
                        {
                            "loc": ["body", "port"],
                            "msg": "Input should be less than or equal to 65535",
                            "type": "less_than_equal",
                        }
                    ],
                },
            ]
        },
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting problem+json answers for these statuses."""
    return {status: {"model": Problem} for status in statuses}


# A JSON body that is not JSON (`invalid-json`), too big (`payload-too-large`), or of another
# media type (`unsupported-media-type`).
BODY_ERRORS = problem_responses(400, 413, 415)
# A mail server that cannot be reached or answers wrongly (502), is busy (503), or slow (504).
MAILBOX_ERRORS = problem_responses(502, 503, 504)
