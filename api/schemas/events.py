"""The webhook payloads, one schema per event type, for the OpenAPI 3.1 `webhooks` section.

The body is what ``store.outbox.enqueue`` writes: ``{"type", "timestamp", "data"}``, with
``data.account_id`` beside the message summary or folder as the API shows it (a delete
carries the id alone), the submission's outcome for ``message.sent``/``message.failed``, and
the new state for ``account.error``. tests/test_openapi.py checks one schema per
``EventType``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Response
from pydantic import Field, create_model
from pydantic.json_schema import models_json_schema

from mailgate.domain.base import ResponseModel
from mailgate.domain.endpoint import AccountState
from mailgate.domain.mail import Folder, MessageSummary

_ACCOUNT = Field(description="The account the event is about.")


class MessageData(MessageSummary):
    account_id: str = _ACCOUNT


class FolderData(Folder):
    account_id: str = _ACCOUNT


class DeletedData(ResponseModel):
    account_id: str = _ACCOUNT
    id: str = Field(description="The id of the message or folder that is gone.")


class SubmissionData(ResponseModel):
    account_id: str = _ACCOUNT
    submission_id: str
    message_id: str = Field(description="The Message-ID header of the message.")
    recipients: list[str] = Field(description="Envelope recipients (to, cc and bcc).")
    smtp_code: int | None = Field(description="The SMTP server's reply code.")
    smtp_response: str = Field(description="The SMTP server's words (at most 1000).")


class AccountErrorData(ResponseModel):
    account_id: str = _ACCOUNT
    state: AccountState = Field(description="The account's new state.")
    error: str = Field(description="What went wrong, in the server's or Mailgate's words.")


# event type -> (component name, what `data` holds, when it is sent)
EVENTS: dict[str, tuple[str, type[ResponseModel], str]] = {
    "message.created": ("MessageCreatedEvent", MessageData, "A message arrived or was made."),
    "message.updated": ("MessageUpdatedEvent", MessageData, "Flags, keywords or folder changed."),
    "message.deleted": ("MessageDeletedEvent", DeletedData, "A message is gone."),
    "message.sent": ("MessageSentEvent", SubmissionData, "The SMTP server took a submission."),
    "message.failed": ("MessageFailedEvent", SubmissionData, "A submission failed for good."),
    "folder.created": ("FolderCreatedEvent", FolderData, "A folder was made."),
    "folder.updated": ("FolderUpdatedEvent", FolderData, "A folder was renamed or moved."),
    "folder.deleted": ("FolderDeletedEvent", DeletedData, "A folder is gone."),
    "account.error": ("AccountErrorEvent", AccountErrorData, "The mailbox stopped working."),
}


def event_model(event_type: str, name: str, data: type[ResponseModel]) -> type[ResponseModel]:
    model: type[ResponseModel] = create_model(
        name,
        __base__=ResponseModel,
        type=(Literal[event_type], Field(description="The event type.")),  # type: ignore[arg-type]  # a Literal made at run time
        timestamp=(datetime, Field(description="When the event was written (UTC).")),
        data=(data, ...),
    )
    return model


def event_schemas() -> dict[str, Any]:
    """The payloads' component schemas, as Mailgate writes them (serialization mode: the
    same EmailAddress, Flags ... as the API's answers)."""
    models = [event_model(t, name, data) for t, (name, data, _when) in EVENTS.items()]
    _refs, schema = models_json_schema(
        [(model, "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Any] = schema["$defs"]
    return defs


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_HEADERS = [
    _header("webhook-id", "The event id; every retry of the event carries the same."),
    _header("webhook-timestamp", "When this attempt was signed, in Unix seconds."),
    _header("webhook-signature", "`v1,<base64 HMAC-SHA256>` (Standard Webhooks)."),
]


def _never_called() -> None:
    """Documents what an endpoint receives; Mailgate serves no such route."""


def document_webhooks(app: FastAPI) -> None:
    """Adds the `webhooks` section: what Mailgate POSTs to an endpoint for each event type
    (the schemas are added to the components by api.document)."""
    for event_type, (name, _data, when) in EVENTS.items():
        body = {"$ref": f"#/components/schemas/{name}"}
        app.webhooks.add_api_route(
            event_type,
            _never_called,
            methods=["POST"],
            operation_id=name[0].lower() + name[1:],
            summary=when,
            description="Answer 2xx within 10 seconds; anything else is retried with "
            "backoff, with the same `webhook-id`. Verify `webhook-signature` with the "
            "endpoint's secret before trusting the body.",
            tags=["webhooks"],
            status_code=200,
            response_class=Response,
            responses={200: {"description": "Received (any 2xx)."}},
            openapi_extra={
                "parameters": _HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
            },
        )
