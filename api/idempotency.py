"""``Idempotency-Key`` on every POST (as Stripe has it), a pure ASGI middleware.

A POST with ``Authorization: Bearer <api key>`` and ``Idempotency-Key: <key>`` claims the key
for that API key (its SHA-256, as stored in ``api_key.key_hash``: no lookup here; the app
still checks the key). The first request executes; the middleware hashes the request
(method, path, query, body bytes) as the app reads it, passes the answer through while
keeping a copy, and stores both before the answer's last byte goes out. Within 24 hours:

* the same request again answers the stored answer (status, body, ``Content-Type``,
  ``Location``) with ``Idempotent-Replayed: true``, without executing; its body is hashed as
  it streams in, never buffered (uploads are up to 25 MiB);
* another request under the key is ``409 idempotency-conflict``, and so is any request under
  it while the first still executes (``Retry-After: 1``);
* a malformed key is ``400 invalid-idempotency-key``.

Not stored (the claim is dropped, a retry executes): answers of 500 and up and refusals
before anything ran (401, 403, 405, 429); an answer over 1 MiB; a request whose body was not
read to its end (refused early with 413, say: it cannot be told apart from another body);
an exception. POSTs without a bearer key or without the header pass through untouched, and
so do other methods.

The database work (gateway.idempotency) runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailgate.api.problems import problem_response
from mailgate.gateway.access import Access
from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import hash_api_key
from mailgate.gateway.idempotency import (
    Claimed,
    Completed,
    IdempotencyRecords,
    InProgress,
    StoredResponse,
)

log = logging.getLogger("mailgate.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII, no space at either end (a server strips those from a header value).
KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"
_KEY = re.compile(KEY_PATTERN.removeprefix("^").removesuffix("$"))
# Answers to POSTs are small JSON; a bigger one is passed on, not kept.
MAX_KEPT_ANSWER = 1024 * 1024
# What the app left of the body unread (a route without one) is hashed before the answer
# ends, up to this much; beyond it the answer is not kept.
MAX_UNREAD_BODY = 1024 * 1024
# Refused before the request ran, or failed in a way a retry should redo.
_NOT_KEPT = {401, 403, 405, 429}


def parse_key(raw: bytes) -> str | None:
    """The key of an ``Idempotency-Key`` header value, or None when it is malformed."""
    text = raw.decode("latin-1")
    return text if _KEY.fullmatch(text) else None


def bearer_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer API key of a request (as FastAPI's HTTPBearer reads ``Authorization``),
    or None without one."""
    value = next((v for k, v in headers if k == b"authorization"), None)
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def is_kept(status: int) -> bool:
    return status < 500 and status not in _NOT_KEPT


class Fingerprint:
    """SHA-256 over the method, path and query (length-prefixed) and then the body's bytes
    as they stream in."""

    def __init__(self, method: str, path: bytes, query: bytes) -> None:
        self._hash = hashlib.sha256()
        for part in (method.encode("ascii"), path, query):
            self._hash.update(len(part).to_bytes(8, "big") + part)

    @classmethod
    def of(cls, scope: Scope) -> Fingerprint:
        path = scope.get("raw_path") or scope["path"].encode("utf-8")
        return cls(scope["method"], path, scope.get("query_string", b""))

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, gateway: Gateway, access: Access) -> None:
        self.app = app
        self.records = IdempotencyRecords(gateway.engine, gateway.passwords)
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        given = [value for name, value in headers if name == b"idempotency-key"]
        token = bearer_of(headers)
        if not given or token is None:
            await self.app(scope, receive, send)
            return
        key = parse_key(given[0]) if len(given) == 1 else None
        if key is None:
            await _invalid_key()(scope, receive, send)
            return
        if not await anyio.to_thread.run_sync(self.access.is_live, token):
            # an unknown, deleted or expired key: the app refuses it (401, or 429 for an
            # address sending wrong keys); nothing is claimed or replayed for it
            await self.app(scope, receive, send)
            return
        caller = hash_api_key(token)
        outcome = await anyio.to_thread.run_sync(self.records.claim, caller, key)
        if isinstance(outcome, Claimed):
            execution = _Execution(self.records, scope, receive, send, caller, key, outcome.token)
            await execution.run(self.app)
        elif isinstance(outcome, InProgress):
            await _in_progress()(scope, receive, send)
        else:
            await _replay(outcome, scope, receive, send)


class _Execution:
    """The first request under a key: executes, and its answer is kept (or the claim let go)."""

    def __init__(
        self,
        records: IdempotencyRecords,
        scope: Scope,
        receive: Receive,
        send: Send,
        caller: str,
        key: str,
        token: str,
    ) -> None:
        self.records, self.scope, self._receive, self._send = records, scope, receive, send
        self.caller, self.key, self.token = caller, key, token
        self.fingerprint = Fingerprint.of(scope)
        self.body_read = False  # the last body message came through
        self.body_lost = False  # the body will not be read to its end
        self.status: int | None = None
        self.content_type: str | None = None
        self.location: str | None = None
        self.answer = bytearray()
        self.answer_too_big = False
        self.settled = False

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException:
            await self._settle(keep=False)
            raise
        await self._settle(keep=False)  # no-op once the answer was complete

    async def receive(self) -> Message:
        try:
            message = await self._receive()
        except BaseException:  # the body size limit (api.middleware) or a broken connection
            self.body_lost = True
            raise
        if self.body_read:
            return message
        if message["type"] == "http.request":
            self.fingerprint.update(message.get("body", b""))
            self.body_read = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self.body_lost = True
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    self.content_type = value.decode("latin-1")
                elif name.lower() == b"location":
                    self.location = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if len(self.answer) + len(chunk) > MAX_KEPT_ANSWER:
                self.answer_too_big = True
                self.answer.clear()
            elif not self.answer_too_big:
                self.answer += chunk
            if not message.get("more_body", False):
                # kept before the last byte goes out: a retry after the answer is a replay
                await self._settle(keep=True)
        await self._send(message)

    async def _settle(self, keep: bool) -> None:
        if self.settled:
            return
        self.settled = True
        keep = keep and self.status is not None and is_kept(self.status) and not self.answer_too_big
        if keep and not self.body_read and not self.body_lost:
            await self._read_rest()
        if keep and self.body_read and not self.body_lost:
            assert self.status is not None
            response = StoredResponse(
                self.status, self.content_type, self.location, bytes(self.answer)
            )
            kept = await _shielded(
                self.records.complete,
                self.caller,
                self.key,
                self.token,
                self.fingerprint.hexdigest(),
                response,
            )
            if kept:
                return
        await _shielded(self.records.release, self.caller, self.key, self.token)

    async def _read_rest(self) -> None:
        """Hash what the app did not read of the body (a route that takes none), so that
        the answer can be kept; give up past MAX_UNREAD_BODY."""
        unread = 0
        try:
            while not self.body_read and not self.body_lost:
                message = await self.receive()
                unread += len(message.get("body", b""))
                if unread > MAX_UNREAD_BODY:
                    self.body_lost = True
        except Exception:
            self.body_lost = True  # over the body size limit, or the client is gone


async def _shielded(function: Callable[..., None], *args: Any) -> bool:
    """Run a blocking record update in a worker thread, even while the request is being
    cancelled; a failure is logged (the answer goes out regardless). True if it ran."""
    try:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(function, *args)
    except Exception:
        log.exception("could not update an idempotency record")
        return False
    return True


async def _replay(done: Completed, scope: Scope, receive: Receive, send: Send) -> None:
    """The stored answer, if the request is the same one: its body is hashed as it streams
    in, not kept."""
    fingerprint = Fingerprint.of(scope)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away
            fingerprint.update(message.get("body", b""))
            if not message.get("more_body", False):
                break
    except HTTPException as exc:  # the body size limit (api.middleware): nothing is read
        if exc.status_code != 413:
            raise
        answer = problem_response(413, "payload-too-large", str(exc.detail))
        await answer(scope, receive, send)
        return
    if not hmac.compare_digest(fingerprint.hexdigest(), done.fingerprint):
        await _conflict()(scope, receive, send)
        return
    stored = done.response
    headers = {REPLAYED_HEADER: "true"}
    if stored.content_type is not None:
        headers["Content-Type"] = stored.content_type
    if stored.location is not None:
        headers["Location"] = stored.location
    await Response(stored.body, stored.status_code, headers)(scope, receive, send)


def _invalid_key() -> Response:
    return problem_response(
        400,
        "invalid-idempotency-key",
        f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters, without a space "
        "at either end (a UUID is a good one).",
        title="Invalid Idempotency-Key",
    )


def _in_progress() -> Response:
    return problem_response(
        409,
        "idempotency-conflict",
        f"A request with this {HEADER} is still in progress; retry it in a moment.",
        title="Idempotency-Key in use",
        headers={"Retry-After": "1"},
    )


def _conflict() -> Response:
    return problem_response(
        409,
        "idempotency-conflict",
        f"This {HEADER} was used for another request (method, path, query or body) within "
        "the last 24 hours; send a new key with a new request.",
        title="Idempotency-Key in use",
    )


# --- the OpenAPI document ----------------------------------------------------------------------

RULES = (
    "Makes the POST safe to retry. The same key from the same API key with the same request "
    "(method, path, query and body bytes) within 24 hours answers what the first one "
    "answered (status, body, `Content-Type`, `Location`) with `Idempotent-Replayed: true`, "
    "without executing again. The key with another request, or while the first one is still "
    "executing (with `Retry-After: 1`), is `409 idempotency-conflict`; a malformed key is "
    "`400 invalid-idempotency-key`. Answers 5xx, 401, 403, 405 and 429 are not kept: a "
    "retry executes. 1-255 printable ASCII characters, no space at either end; a UUID is a "
    "good key."
)
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def document_idempotency(spec: dict[str, Any]) -> None:
    """Every POST of the document takes the optional header, and documents the 400 and 409
    it may answer. A route that reads the header itself (sending) keeps its own words after
    the common ones."""
    for item in spec.get("paths", {}).values():
        operation = item.get("post")
        if operation is None:
            continue
        parameters = operation.get("parameters", [])
        own = [p for p in parameters if p["in"] == "header" and p["name"].lower() == HEADER.lower()]
        words = [p.get("description", "").removeprefix(RULES).strip() for p in own]
        description = " ".join([RULES, *filter(None, words)])
        operation["parameters"] = [p for p in parameters if p not in own] + [
            {
                "name": HEADER,
                "in": "header",
                "required": False,
                "description": description,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_KEY_LENGTH,
                    "pattern": KEY_PATTERN,
                    "title": HEADER,
                },
            }
        ]
        responses = operation.setdefault("responses", {})
        responses.setdefault("400", {"description": "Bad Request", "content": _PROBLEM})
        responses.setdefault("409", {"description": "Conflict", "content": _PROBLEM})
