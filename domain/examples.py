"""Examples of the main request and answer bodies, shown in the OpenAPI document (and by
the generated clients' docs). tests/unit/test_examples.py validates each against its model."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

_ACCOUNT_ID = "acc_3k9v2m7q4x8t"
_INBOX_ID = "fld_SU5CT1g"
_MESSAGE_ID = "msg_SU5CT1g.1700000000.42"
_AT = "2025-03-14T09:26:53Z"


def examples(*bodies: dict[str, Any]) -> ConfigDict:
    """A model config that shows ``bodies`` as the schema's examples."""
    return ConfigDict(json_schema_extra={"examples": list(bodies)})


ACCOUNT_CREATE = {
    "protocol": "imap",
    "host": "imap.example.com",
    "security": "tls",
    "username": "me@example.com",
    "password": "app-password",
    "name": "Work",
}
# dict(): `pop3` is a field name here, not a protocol switch (tests/unit/test_architecture.py)
ACCOUNT_OUT = dict(
    id=_ACCOUNT_ID,
    name="Work",
    protocol="imap",
    host="imap.example.com",
    port=993,
    security="tls",
    tls_verify=True,
    username="me@example.com",
    auth_type="password",
    oauth2_app_id=None,
    pop3=None,
    watched_folders=None,
    send_as=["me@example.com"],
    state="connected",
    state_detail=None,
    sync_state="running",
    sync_progress=None,
    created_at=_AT,
    updated_at=_AT,
)
POP3_ACCOUNT_SYNCING = ACCOUNT_OUT | dict(
    protocol="pop3",
    host="pop.example.com",
    port=995,
    pop3=dict(
        leave_on_server=True,
        delete_after_days=None,
        purge_on_server=False,
        keep_server_deleted=True,
    ),
    sync_state="initializing",
    sync_progress=dict(messages_stored=1000, messages_on_server=5000),
)
FOLDER = {
    "id": _INBOX_ID,
    "name": "INBOX",
    "path": "INBOX",
    "delimiter": "/",
    "parent_id": None,
    "role": "inbox",
    "total": 1204,
    "unread": 3,
}
_SUMMARY = {
    "id": _MESSAGE_ID,
    "folder_id": _INBOX_ID,
    "subject": "Quarterly report",
    "from": [{"name": "Ada Lovelace", "email": "ada@example.org"}],
    "to": [{"name": None, "email": "me@example.com"}],
    "cc": [],
    "date": _AT,
    "received_at": _AT,
    "size": 48213,
    "flags": {"seen": False, "flagged": True, "answered": False, "draft": False},
    "keywords": ["$Important"],
    "has_attachments": True,
}
MESSAGE_SUMMARY = {**_SUMMARY, "preview": "Hello, the figures for the first quarter are in"}
MESSAGE = {
    **MESSAGE_SUMMARY,
    "bcc": [],
    "reply_to": [],
    "message_id": "20250314092653.4242@example.org",
    "in_reply_to": [],
    "references": [],
    "text": "Hello,\n\nthe figures for the first quarter are in the attached PDF.\n\nAda\n",
    "html": None,
    "attachments": [
        {
            "id": "2",
            "filename": "report-q1.pdf",
            "content_type": "application/pdf",
            "size": 45012,
            "content_id": None,
            "inline": False,
        }
    ],
}
WEBHOOK_CREATE = {
    "url": "https://example.com/hooks/mail",
    "events": ["message.created", "message.updated"],
    "account_ids": [_ACCOUNT_ID],
    "description": "New and re-flagged mail",
}
WEBHOOK_OUT = {
    "id": "whk_7c2m9p4r8s1d",
    "url": "https://example.com/hooks/mail",
    "events": ["message.created", "message.updated"],
    "account_ids": [_ACCOUNT_ID],
    "description": "New and re-flagged mail",
    "enabled": True,
    "disabled_reason": None,
    "created_at": _AT,
    "updated_at": _AT,
}
WEBHOOK_CREATED = {**WEBHOOK_OUT, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
COMPOSE = {
    "to": [{"name": "Ada Lovelace", "email": "ada@example.org"}],
    "subject": "Re: Quarterly report",
    "text": "Thanks, Ada: looks good.",
    "reply_to_message_id": _MESSAGE_ID,
}
SUBMISSION = {
    "id": "sub_5n8b2x6w3k1q",
    "account_id": _ACCOUNT_ID,
    "status": "sent",
    "message_id": "20250314093012.77@mailgate.example.com",
    "recipients": ["ada@example.org"],
    "attempts": 1,
    "smtp_code": 250,
    "smtp_response": "2.0.0 Ok: queued as 4Zk3Lq1mPz",
    "next_attempt_at": None,
    "created_at": _AT,
    "updated_at": _AT,
}

API_KEY = "mg_Jx4sQe1rW2mV0bN8cT6yH3kL9pA5dF7gZ2uE4iO1qR8"
KEY_CREATE = {
    "name": "web app of alice",
    "scopes": ["read", "write"],
    "account_ids": [_ACCOUNT_ID],
    "expires_at": "2027-06-30T00:00:00Z",
}
KEY_OUT = {
    "id": "key_7d2k9m4q1x6t",
    "name": "web app of alice",
    "prefix": API_KEY[:10],
    "scopes": ["read", "write"],
    "account_ids": [_ACCOUNT_ID],
    "expires_at": "2027-06-30T00:00:00Z",
    "rate_limit_per_minute": None,
    "created_at": _AT,
    "last_used_at": None,
}
