"""Conditional GETs (RFC 9110 section 13): an ``ETag`` on a JSON answer, and ``304 Not
Modified`` for a client whose ``If-None-Match`` names it. Mobile clients re-poll a lot; a
304 spares them the transfer (the gateway still reads the mailbox to know)."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

ETAG_HEADER: dict[str, Any] = {
    "ETag": {
        "description": "Names this answer's content; send it back as `If-None-Match`.",
        "schema": {"type": "string"},
    }
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not modified: the `If-None-Match` ETag still names the content (no body).",
        "headers": ETAG_HEADER,
    }
}


def etag_of(body: bytes) -> str:
    """A weak validator: the same JSON means the same content, not the same bytes on the
    wire (RFC 9110 section 8.8.1)."""
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` (weak comparison) or is ``*``."""
    if if_none_match is None:
        return False
    wanted = _opaque(etag)
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or (candidate and _opaque(candidate) == wanted):
            return True
    return False


def conditional_json(request: Request, model: BaseModel) -> Response:
    """``model`` as JSON with its ETag, or a bodiless 304 when the client has it already."""
    body = model.__pydantic_serializer__.to_json(model, by_alias=True)  # bytes, not str
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag
