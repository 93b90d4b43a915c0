"""The base of request models every layer shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """Answers: every field is always sent (a default only fills it in), so the OpenAPI
    document marks each one `required` and generated clients need no "unset" case."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)
