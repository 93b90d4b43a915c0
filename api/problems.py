"""Every error becomes RFC 9457 problem+json with a stable ``type``; never a traceback."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Literal, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from typing_extensions import TypeAliasType

from mailgate.domain.errors import InvalidRequest, MailboxError, MailgateError
from mailgate.gateway.logs import request_id_var

log = logging.getLogger("mailgate.api")

PROBLEM_JSON = "application/problem+json"

# Every `type` an answer can carry: the tables below, the domain errors' types and those
# raised at the edge (tests/test_openapi.py checks the list against the code). The OpenAPI
# document names it `ProblemType`, so clients can switch on it.
ProblemType = TypeAliasType(
    "ProblemType",
    Literal[
        "already-exists",
        "bad-request",
        "cannot-calculate-changes",
        "cursor-expired",
        "forbidden",
        "http-error",
        "idempotency-conflict",
        "in-use",
        "insufficient-scope",
        "internal-error",
        "invalid-cursor",
        "invalid-folder-id",
        "invalid-idempotency-key",
        "invalid-json",
        "invalid-multipart",
        "mailbox-auth-failed",
        "mailbox-busy",
        "mailbox-error",
        "mailbox-host-not-allowed",
        "mailbox-protocol-error",
        "mailbox-timeout",
        "mailbox-tls-failed",
        "mailbox-unreachable",
        "method-not-allowed",
        "no-trash-folder",
        "not-acceptable",
        "not-found",
        "not-ready",
        "oauth2-provider-error",
        "oauth2-state-invalid",
        "oauth2-wrong-mailbox",
        "payload-too-large",
        "rate-limited",
        "unauthorized",
        "unsupported",
        "unsupported-media-type",
        "validation-error",
    ],
)
PROBLEM_TYPES: tuple[str, ...] = get_args(ProblemType.__value__)

# Each error type of mailgate.domain.errors answers one status, with one title.
_PROBLEMS: dict[str, tuple[int, str]] = {
    "not-found": (404, "Not Found"),
    "validation-error": (422, "Validation error"),
    "invalid-cursor": (422, "Invalid cursor"),
    "invalid-folder-id": (422, "Invalid folder id"),
    "cursor-expired": (410, "Cursor expired"),
    "cannot-calculate-changes": (410, "Cannot calculate changes"),
    "already-exists": (409, "Already exists"),
    "no-trash-folder": (409, "No trash folder"),
    "in-use": (409, "In use"),
    "oauth2-state-invalid": (400, "Unknown or expired sign-in"),
    "oauth2-provider-error": (502, "The OAuth2 provider refused or failed"),
    "oauth2-wrong-mailbox": (409, "Signed in to another mailbox"),
    "unsupported": (422, "Not supported by this mailbox"),
    "mailbox-error": (502, "Mailbox error"),
    "mailbox-auth-failed": (422, "The mail server refused the login"),
    "mailbox-unreachable": (502, "The mail server cannot be reached"),
    "mailbox-host-not-allowed": (422, "The mail server's address is not allowed here"),
    "mailbox-timeout": (504, "The mail server did not answer in time"),
    "mailbox-busy": (503, "The mailbox is busy; try again shortly"),
    "mailbox-tls-failed": (502, "TLS with the mail server failed"),
    "mailbox-protocol-error": (502, "The mail server answered wrongly"),
}

_HTTP_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


class ProblemException(Exception):
    """Raise from an endpoint to answer a problem directly."""

    def __init__(
        self,
        status: int,
        type_: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or type_)
        self.status, self.type, self.detail, self.headers = status, type_, detail, headers


def problem_response(
    status: int,
    type_: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e["loc"]],
            "msg": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors()
    ]  # no `input`: it may hold a password
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(
            400, "invalid-json", "The request body is not valid JSON.", errors=errors
        )
    return problem_response(
        422,
        "validation-error",
        "The request does not match the schema; see `errors`.",
        title="Validation error",
        errors=errors,
    )


# FastAPI's words for a body it could not decode at all (not UTF-8, nested too deep).
_UNPARSEABLE_BODY = "There was an error parsing the body"


def _allowed_methods(request: Request) -> str | None:
    """The methods the API documents for the request's path, for `Allow` on a 405. Starlette
    names only those of the first route whose path matched, and FastAPI makes one route per
    method; None for a path the OpenAPI document does not list (the docs pages)."""
    segments = request.url.path.split("/")
    for template, operations in request.app.openapi()["paths"].items():
        parts = template.split("/")
        if len(parts) == len(segments) and all(
            part == segment or (part.startswith("{") and part.endswith("}") and segment)
            for part, segment in zip(parts, segments, strict=True)
        ):
            return ", ".join(sorted(method.upper() for method in operations))
    return None


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    type_ = _HTTP_TYPES.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 400 and detail == _UNPARSEABLE_BODY:
        type_, detail = "invalid-json", "The request body is not valid JSON (UTF-8, not too deep)."
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such route."
    headers = dict(exc.headers) if exc.headers else None
    allow = _allowed_methods(request) if exc.status_code == 405 else None
    if allow:
        headers = {**(headers or {}), "Allow": allow}
    return problem_response(exc.status_code, type_, detail, headers=headers)


def error_response(exc: MailgateError) -> JSONResponse:
    status, title = _PROBLEMS.get(exc.type, (500, "Error"))
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidRequest) and exc.loc is not None:
        extra["errors"] = [{"loc": list(exc.loc), "msg": exc.detail, "type": "value_error"}]
    return problem_response(status, exc.type, exc.detail, title=title, **extra)


def internal_error() -> JSONResponse:
    return problem_response(
        500, "internal-error", "An unexpected error happened; quote the request id to an operator."
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_validation(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_errors(exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _http_error(request, exc)

    async def on_problem(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemException)
        return problem_response(exc.status, exc.type, exc.detail, headers=exc.headers)

    async def on_error(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MailgateError)
        if isinstance(exc, MailboxError):
            log.info("mailbox error: %s", exc.detail, extra={"problem": exc.type})
        return error_response(exc)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ProblemException, on_problem)
    app.add_exception_handler(MailgateError, on_error)
