"""What the OpenAPI document says beyond each route's own decorator: the operation ids (set
here and nowhere else), ``info``, servers, tags, and the problem+json answers.

Client generators name their methods after ``operationId`` (openapi-python-client,
openapi-typescript, @hey-api/openapi-ts), so the ids are short, camelCase and stable: a
route's Python name may change, its operation id does not. ``tests/test_openapi.py`` holds
every route to this table."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from mailgate.api.idempotency import document_idempotency
from mailgate.api.schemas.events import event_schemas
from mailgate.api.scopes import required_scopes, security

# The endpoint function's name -> the operation id clients know it by.
OPERATION_IDS: dict[str, str] = {
    # health
    "healthz": "getLiveness",
    "readyz": "getReadiness",
    "metrics": "getMetrics",
    # accounts
    "list_accounts": "listAccounts",
    "create_account": "createAccount",
    "get_account": "getAccount",
    "update_account": "updateAccount",
    "delete_account": "deleteAccount",
    "reauthorize": "reauthorizeAccount",
    # folders
    "list_folders": "listFolders",
    "create_folder": "createFolder",
    "update_folder": "updateFolder",
    "delete_folder": "deleteFolder",
    # messages
    "list_messages": "listMessages",
    "batch": "batchMessages",
    "get_message": "getMessage",
    "get_raw": "getMessageRaw",
    "get_attachment": "getAttachment",
    "update_message": "updateMessage",
    "copy_message": "copyMessage",
    "delete_message": "deleteMessage",
    # changes, and the same events pushed (Server-Sent Events)
    "get_changes": "getChanges",
    "create_event_token": "createEventToken",
    "stream_account_events": "streamAccountEvents",
    "stream_events": "streamEvents",
    # webhooks
    "list_webhooks": "listWebhooks",
    "create_webhook": "createWebhook",
    "get_webhook": "getWebhook",
    "get_webhook_secret": "getWebhookSecret",
    "update_webhook": "updateWebhook",
    "delete_webhook": "deleteWebhook",
    "list_deliveries": "listWebhookDeliveries",
    # sending
    "set_smtp": "setSmtpSettings",
    "get_smtp": "getSmtpSettings",
    "delete_smtp": "deleteSmtpSettings",
    "send": "sendMessage",
    "list_submissions": "listSubmissions",
    "get_submission": "getSubmission",
    # drafts
    "create_draft": "createDraft",
    "replace_draft": "replaceDraft",
    "delete_draft": "deleteDraft",
    "send_draft": "sendDraft",
    # uploads
    "create_upload": "createUpload",
    "get_upload": "getUpload",
    "delete_upload": "deleteUpload",
    # oauth2
    "list_apps": "listOAuthApps",
    "create_app": "createOAuthApp",
    "get_app": "getOAuthApp",
    "update_app": "updateOAuthApp",
    "delete_app": "deleteOAuthApp",
    "authorize": "authorizeOAuthApp",
    "callback": "oauthCallback",
    # keys
    "list_keys": "listKeys",
    "create_key": "createKey",
    "get_key": "getKey",
    "delete_key": "deleteKey",
}


def operation_id(route: APIRoute) -> str:
    """FastAPI's ``generate_unique_id_function``: the table's id; a route missing from it
    stops the app from starting (its id would otherwise be whatever FastAPI derives)."""
    try:
        return OPERATION_IDS[route.name]
    except KeyError:
        raise KeyError(f"route {route.name!r} has no operation id in api/document.py") from None


DESCRIPTION = """\
One JSON API for any IMAP or POP3 mailbox: accounts, folders, messages, flags, sending,
drafts, a change feed for delta sync, and signed webhooks.

Every `/v1` call needs `Authorization: Bearer <api key>`; a key sees only its tenant's data
(another tenant's ids answer `404`), and only the accounts it is bound to. Each operation
names the scope it needs (`read`, `write`, `send`, `admin`; `403 insufficient-scope`
without). A key may make `RateLimit-Limit` requests a minute (`429 rate-limited` past it,
with `Retry-After`). Errors are RFC 9457 `application/problem+json` whose `type` is one of
`ProblemType`. Ids are opaque strings. Every POST takes an optional `Idempotency-Key` (a
UUID, say): a retry with the same key and request within 24 hours answers the first answer
again (`Idempotent-Replayed: true`) instead of executing twice. The `webhooks` section
describes the signed events POSTed to your endpoints (Standard Webhooks).
"""

LICENSE = {"name": "Apache-2.0", "identifier": "Apache-2.0"}

SERVERS = [
    {"url": "http://127.0.0.1:8025", "description": "`mailgate serve` with its defaults"},
]

TAGS: list[dict[str, Any]] = [
    {"name": "accounts", "description": "Mailboxes (IMAP or POP3): add, read, change, remove."},
    {"name": "folders", "description": "An account's folders, with roles and counts."},
    {
        "name": "messages",
        "description": "Messages of a folder: list and search, read, raw source, "
        "attachments, flags, move, copy, delete.",
    },
    {"name": "changes", "description": "Delta sync: what changed since a state."},
    {
        "name": "events",
        "description": "The webhook events pushed as Server-Sent Events, resumable with "
        "`Last-Event-ID`; short-lived tokens for `EventSource`.",
    },
    {"name": "webhooks", "description": "Endpoints that receive signed events, and deliveries."},
    {"name": "sending", "description": "SMTP settings, sending, and the submission queue."},
    {"name": "drafts", "description": "Drafts in the account's Drafts folder."},
    {"name": "uploads", "description": "Attachments uploaded once, named by id when sending."},
    {"name": "oauth2", "description": "OAuth2 apps and the hosted sign-in (Gmail, Microsoft)."},
    {"name": "keys", "description": "API keys with scopes, account bindings and expiry."},
    {
        "name": "health",
        "description": "Liveness, readiness and Prometheus metrics; no API key needed.",
    },
]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's document, built once: error answers documented as
    `application/problem+json`, not `application/json`."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=DESCRIPTION,
        license_info=LICENSE,
        servers=SERVERS,
        tags=TAGS,
        routes=app.routes,
        webhooks=app.webhooks.routes,
    )
    schemas = spec["components"]["schemas"]
    for name, schema in event_schemas().items():  # the answers' own where both have one
        kept = schemas.setdefault(name, schema)
        assert _shape(kept) == _shape(schema), f"two different schemas named {name}"
    spec["components"]["schemas"] = dict(sorted(schemas.items()))
    spec = _one_name_per_direction(spec)
    document_idempotency(spec)
    problem = {"$ref": "#/components/schemas/Problem"}
    for path in spec["paths"].values():
        for operation in path.values():
            _document_access(operation, problem)
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/problem+json" not in content:
                    # application/json, or a route's own type (text/event-stream): an error
                    # answers problem+json whatever the route's success answer is
                    for media in list(content)[:1]:
                        content["application/problem+json"] = content.pop(media)
    app.openapi_schema = spec
    return spec


_LIMIT_HEADERS = {
    "RateLimit-Limit": "Requests the key may make in the current minute.",
    "RateLimit-Remaining": "Requests left in it.",
    "RateLimit-Reset": "Seconds until it ends.",
    "RateLimit-Policy": "The limit and its window, as `1200;w=60`.",
}


def _document_access(operation: dict[str, Any], problem: dict[str, Any]) -> None:
    """An operation behind an API key: the scope it needs (api.scopes), `403` without it,
    and `429` past the key's rate limit; its answers carry the `RateLimit-*` headers."""
    operation_id = operation["operationId"]
    operation["security"] = security(operation_id, "HTTPBearer")
    if not operation["security"]:
        return
    needed = " or ".join(f"`{scope}`" for scope in required_scopes(operation_id))
    operation["description"] = (operation.get("description", "") + f"\n\nScope: {needed}.").lstrip()
    responses = operation["responses"]
    json_problem = {"application/problem+json": {"schema": problem}}
    responses.setdefault(
        "403",
        {"description": f"`insufficient-scope`: the key lacks {needed}.", "content": json_problem},
    )
    responses.setdefault(
        "429",
        {
            "description": "`rate-limited`: over the key's requests a minute (or too many "
            "wrong keys from this address); wait for `Retry-After` seconds.",
            "headers": {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
            },
            "content": json_problem,
        },
    )
    for status, response in responses.items():
        if status[0] in "2345" and status != "429":
            headers = response.setdefault("headers", {})
            for name, about in _LIMIT_HEADERS.items():
                schema = {"type": "string" if name == "RateLimit-Policy" else "integer"}
                headers.setdefault(name, {"description": about, "schema": schema})


def _shape(schema: Any) -> Any:
    """A schema without `default`s (FastAPI leaves them out of an answer's schema)."""
    if isinstance(schema, dict):
        return {k: _shape(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [_shape(v) for v in schema]
    return schema


def _one_name_per_direction(spec: dict[str, Any]) -> dict[str, Any]:
    """A model both asked and answered (Pop3Policy, MailServer) has two schemas, the answer's
    with every field required; FastAPI names them `X-Input` and `X-Output` with one title,
    which generators refuse as a duplicate model. They become `X` and `XOut`."""
    schemas = spec.get("components", {}).get("schemas", {})
    renames = {
        name: name.removesuffix("-Input") if name.endswith("-Input") else name[:-7] + "Out"
        for name in schemas
        if name.endswith(("-Input", "-Output"))
    }
    if not renames:
        return spec
    text = json.dumps(spec)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    spec = json.loads(text)
    schemas = spec["components"]["schemas"]
    for old, new in renames.items():
        schemas[new] = {**schemas.pop(old), "title": new}
    spec["components"]["schemas"] = dict(sorted(schemas.items()))
    return spec
