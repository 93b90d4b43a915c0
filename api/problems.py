"""Every error becomes RFC 9457 problem+json with a stable ``type``; never a traceback."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.errors import (
    AlreadyExists,
    InvalidArgument,
    MailboxAuthFailed,
    MailboxError,
    MailboxProtocolError,
    MailboxTimeout,
    MailboxTLSError,
    MailboxUnreachable,
    NoSuchObject,
    Unsupported,
)
from gateway.errors import InvalidRequest, NotFound
from gateway.logs import request_id_var

log = logging.getLogger("mailgate.api")

PROBLEM_JSON = "application/problem+json"

_MAILBOX_PROBLEMS: list[tuple[type[MailboxError], int, str, str]] = [
    (MailboxAuthFailed, 422, "mailbox-auth-failed", "The mail server refused the login"),
    (MailboxUnreachable, 502, "mailbox-unreachable", "The mail server cannot be reached"),
    (MailboxTimeout, 504, "mailbox-timeout", "The mail server did not answer in time"),
    (MailboxTLSError, 502, "mailbox-tls-failed", "TLS with the mail server failed"),
    (MailboxProtocolError, 502, "mailbox-protocol-error", "The mail server answered wrongly"),
    (Unsupported, 422, "unsupported", "Not supported by this mailbox"),
]

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


def _http_error(exc: StarletteHTTPException) -> JSONResponse:
    type_ = _HTTP_TYPES.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such route."
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, type_, detail, headers=headers)


_ARGUMENT_STATUS = {"cursor-expired": 410, "no-trash-folder": 409, "not-found": 404}


def _mailbox_error(exc: MailboxError) -> JSONResponse:
    if isinstance(exc, NoSuchObject):
        return problem_response(404, "not-found", exc.detail)
    if isinstance(exc, AlreadyExists):
        return problem_response(409, "already-exists", exc.detail)
    if isinstance(exc, InvalidArgument):
        status = _ARGUMENT_STATUS.get(exc.problem_type, 422)
        return problem_response(status, exc.problem_type, exc.detail)
    for cls, status, type_, title in _MAILBOX_PROBLEMS:
        if isinstance(exc, cls):
            return problem_response(status, type_, exc.detail, title=title)
    return problem_response(502, "mailbox-error", exc.detail, title="Mailbox error")


def internal_error() -> JSONResponse:
    return problem_response(
        500, "internal-error", "An unexpected error happened; quote the request id to an operator."
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_validation(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_errors(exc)

    async def on_http(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _http_error(exc)

    async def on_problem(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemException)
        return problem_response(exc.status, exc.type, exc.detail, headers=exc.headers)

    async def on_not_found(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotFound)
        return problem_response(404, "not-found", f"No such {exc.kind}.")

    async def on_invalid(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidRequest)
        return problem_response(422, "validation-error", exc.detail, title="Validation error")

    async def on_mailbox(_r: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MailboxError)
        if not isinstance(exc, NoSuchObject | InvalidArgument | AlreadyExists):
            log.info("mailbox error: %s", exc.detail, extra={"problem": type(exc).__name__})
        return _mailbox_error(exc)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ProblemException, on_problem)
    app.add_exception_handler(NotFound, on_not_found)
    app.add_exception_handler(InvalidRequest, on_invalid)
    app.add_exception_handler(MailboxError, on_mailbox)
