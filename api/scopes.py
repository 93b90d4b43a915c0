"""The scope each operation needs, set here and nowhere else (by operation id, as
api/document.py names them). A key needs one of the listed scopes, counting those its own
imply (domain.keys: `write` reads too, `admin` does everything). The OpenAPI document shows
them as each operation's `security`; tests/test_openapi.py holds every route to this table."""

from __future__ import annotations

from typing import Any

# Operations anyone may call, without an API key.
PUBLIC: frozenset[str] = frozenset({"getLiveness", "getReadiness", "getMetrics", "oauthCallback"})

_READ = ("read",)
_WRITE = ("write",)
_SEND = ("send",)
_ADMIN = ("admin",)
_READ_OR_SEND = ("read", "send")

REQUIRED: dict[str, tuple[str, ...]] = {
    # accounts: reading them is `read`; adding, changing and removing them is `admin`
    "listAccounts": _READ,
    "getAccount": _READ,
    "createAccount": _ADMIN,
    "updateAccount": _ADMIN,
    "deleteAccount": _ADMIN,
    "reauthorizeAccount": _ADMIN,
    # folders
    "listFolders": _READ,
    "createFolder": _WRITE,
    "updateFolder": _WRITE,
    "deleteFolder": _WRITE,
    # messages
    "listMessages": _READ,
    "getMessage": _READ,
    "getMessageRaw": _READ,
    "getAttachment": _READ,
    "updateMessage": _WRITE,
    "copyMessage": _WRITE,
    "deleteMessage": _WRITE,
    "batchMessages": _WRITE,
    # changes and events
    "getChanges": _READ,
    "createEventToken": _READ,
    "streamAccountEvents": _READ,
    "streamEvents": _READ,
    # sending: the SMTP settings hold credentials, like the account's own
    "getSmtpSettings": _READ,
    "setSmtpSettings": _ADMIN,
    "deleteSmtpSettings": _ADMIN,
    "sendMessage": _SEND,
    "listSubmissions": _READ_OR_SEND,
    "getSubmission": _READ_OR_SEND,
    # drafts live in the mailbox: changing them is `write`; sending one is `send`
    "createDraft": _WRITE,
    "replaceDraft": _WRITE,
    "deleteDraft": _WRITE,
    "sendDraft": _SEND,
    # uploads are attachments to send
    "createUpload": _SEND,
    "getUpload": _READ_OR_SEND,
    "deleteUpload": _SEND,
    # the tenant's set-up
    "listWebhooks": _ADMIN,
    "createWebhook": _ADMIN,
    "getWebhook": _ADMIN,
    "getWebhookSecret": _ADMIN,
    "updateWebhook": _ADMIN,
    "deleteWebhook": _ADMIN,
    "listWebhookDeliveries": _ADMIN,
    "listOAuthApps": _ADMIN,
    "createOAuthApp": _ADMIN,
    "getOAuthApp": _ADMIN,
    "updateOAuthApp": _ADMIN,
    "deleteOAuthApp": _ADMIN,
    "authorizeOAuthApp": _ADMIN,
    "listKeys": _ADMIN,
    "createKey": _ADMIN,
    "getKey": _ADMIN,
    "deleteKey": _ADMIN,
}


def required_scopes(operation_id: str) -> tuple[str, ...]:
    """The scopes of which a key needs one; a route missing from the table is refused to
    every key (rather than open to all)."""
    return REQUIRED.get(operation_id, ("(none: missing from api/scopes.py)",))


def security(operation_id: str, scheme: str) -> list[dict[str, Any]]:
    """The operation's OpenAPI `security`: one requirement per acceptable scope (OpenAPI 3.1
    lets a bearer scheme list the roles an operation needs)."""
    if operation_id in PUBLIC:
        return []
    return [{scheme: [scope]} for scope in required_scopes(operation_id)]
