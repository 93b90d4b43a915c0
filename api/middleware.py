"""Pure ASGI middleware: request ids, access logs, request metrics, body size limit,
last-resort 500."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailgate.api.problems import internal_error, problem_response
from mailgate.domain.ids import new_id
from mailgate.gateway.access import WINDOW_SECONDS, Quota
from mailgate.gateway.logs import request_id_var
from mailgate.gateway.metrics import UNMATCHED, Metrics, status_class

log = logging.getLogger("mailgate.http")
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestContextMiddleware:
    """Tags each request with an id (the client's X-Request-ID if sane), logs one line for it,
    observes its duration in ``metrics`` (by route template, never the raw path), and turns
    any unexpected exception into a problem+json 500 carrying that id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_REQUEST_ID.fullmatch(given) else new_id("req")
        token = request_id_var.set(request_id)
        state = scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if response_started:
                raise
            await internal_error()(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "key_id": state.get("key_id"),
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            self.metrics.http_request_duration.labels(
                scope["method"], route_template(scope), status_class(status)
            ).observe(seconds)
            request_id_var.reset(token)


def route_template(scope: Scope) -> str:
    """The path pattern of the route that answered (``/v1/accounts/{account_id}``), which
    the router leaves in the scope; ``unmatched`` when none did (a 404)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


class BodySizeLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming; a
    path that matches a pattern of ``larger`` (the uploads) may send up to its own limit."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Mapping[re.Pattern[str], int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = next(
            (size for path, size in self.larger.items() if path.fullmatch(scope["path"])),
            self.max_bytes,
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await _too_large(max_bytes)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # An HTTPException passes FastAPI's body parsing untouched.
                    raise HTTPException(413, f"The request body is over {max_bytes} bytes.")
            return message

        await self.app(scope, limited_receive, send)


def _too_large(max_bytes: int) -> ASGIApp:
    return problem_response(
        413, "payload-too-large", f"The request body is over {max_bytes} bytes."
    )


RATE_LIMIT_HEADERS = (
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
)


class RateLimitHeadersMiddleware:
    """Tells the client where its key stands (the IETF draft's ``RateLimit-Limit``,
    ``-Remaining``, ``-Reset`` and ``-Policy``) on every answer the key was counted for:
    errors and streamed bodies included, which a route's own headers would miss."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_quota(message: Message) -> None:
            quota = state.get("rate_limit")
            if message["type"] == "http.response.start" and isinstance(quota, Quota):
                values = (
                    quota.limit,
                    quota.remaining,
                    quota.reset,
                    f"{quota.limit};w={WINDOW_SECONDS}",
                )
                message["headers"] = [
                    *message.get("headers", []),
                    *(
                        (name.lower().encode(), str(value).encode())
                        for name, value in zip(RATE_LIMIT_HEADERS, values, strict=True)
                    ),
                ]
            await send(message)

        await self.app(scope, receive, send_with_quota)
