"""The webhook payloads, one schema per event type, for the OpenAPI 3.1 `webhooks` section.

The body is what ``store.outbox.enqueue`` writes: ``{"type", "timestamp", "data"}``, with
``data.account_id`` beside the message summary or folder as the API shows it (a delete
carries the id alone), the submission's outcome for ``message.sent``/``message.failed``, and
the new state for ``account.error``. tests/test_openapi.py checks one schema per
``EventType``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Header, Response
from pydantic import Field, create_model

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


def document_webhooks(app: FastAPI) -> None:
    """Adds the `webhooks` section: what Mailgate POSTs to an endpoint for each event type."""
    for event_type, (name, data, when) in EVENTS.items():
        model = event_model(event_type, name, data)

        def receive(
            body: Any,
            webhook_id: str = Header(
                alias="webhook-id", description="The event id (retries keep it)."
            ),
            webhook_timestamp: str = Header(alias="webhook-timestamp", description="Unix seconds."),
            webhook_signature: str = Header(
                alias="webhook-signature",
                description="`v1,<base64 HMAC-SHA256>` (Standard Webhooks).",
            ),
        ) -> None:
            """Never called: it documents what your endpoint receives."""

        receive.__annotations__["body"] = model
        app.webhooks.add_api_route(
            event_type,
            receive,
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
        )
