"""One file part of a ``multipart/form-data`` body (RFC 7578), received as it streams in:
python-multipart's incremental parser takes the body chunk by chunk, the part's bytes go to
a temporary file on disk (written off the event loop), counted and hashed on the way, and
the upload stops with ``413`` the moment it passes the limit. The temporary file has no
name in the file system (``tempfile.TemporaryFile``): it is gone once closed, however the
request ends.

File names arrive as browsers and HTTP libraries write them (WHATWG HTML, "multipart/
form-data encoding algorithm"): the UTF-8 name in a quoted string with ``"`` as ``%22`` and
line breaks as ``%0D``/``%0A`` (httpx escapes every control character so), or with
backslash escapes (curl); RFC 7578 section 4.2 rules out ``filename*``.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import anyio
from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from mailgate.api.problems import ProblemException
from mailgate.domain.errors import InvalidRequest
from mailgate.domain.uploads import (
    DEFAULT_CONTENT_TYPE,
    ReceivedFile,
    check_content_type,
    check_file_name,
)

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# What a body may hold besides the file: the boundaries, the part headers, small fields.
FRAMING_BYTES = 64 * 1024
_ESCAPED = re.compile(r"%(22|0[0-9A-F]|1[0-9A-F])")


def too_large(max_bytes: int) -> ProblemException:
    return ProblemException(
        413,
        "payload-too-large",
        f"The file is over {max_bytes} bytes (MAILGATE_MAX_UPLOAD_BYTES); nothing was stored.",
    )


def file_name(raw: bytes) -> str:
    """The ``filename`` parameter as sent (latin-1 bytes from the header parser): UTF-8,
    with the HTML form escapes undone. 8-bit bytes that are no UTF-8 are read as latin-1."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return _ESCAPED.sub(lambda match: chr(int(match[1], 16)), text)


class _FileSink:
    """The parser's callbacks: the part named ``field`` goes to ``spool``; other parts are
    read past. Data waits in ``pending`` until :meth:`flush` writes it (in a thread)."""

    def __init__(self, field: str, spool: BinaryIO, max_bytes: int) -> None:
        self.field, self.spool, self.max_bytes = field, spool, max_bytes
        self.header_name = self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.in_file = False
        self.found: list[tuple[str, str]] = []  # (filename, content type) of each file part
        self.pending: list[bytes] = []
        self.size = 0
        self.digest = hashlib.sha256()
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self.headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self.header_name.strip().lower()] = self.header_value.strip()
        self.header_name = self.header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.in_file = options.get(b"name") == self.field.encode()
        if not self.in_file:
            return
        if self.found:
            raise InvalidRequest(f"send one `{self.field}` part, not several", ("body", self.field))
        if b"filename" not in options:
            raise InvalidRequest(
                f"the `{self.field}` part needs a filename (Content-Disposition: form-data; "
                f'name="{self.field}"; filename="...")',
                ("body", self.field),
            )
        media_type, _ = parse_options_header(self.headers.get(b"content-type", b""))
        try:
            name = check_file_name(file_name(options[b"filename"]))
            content_type = check_content_type(media_type.decode("latin-1") or DEFAULT_CONTENT_TYPE)
        except ValueError as exc:
            raise InvalidRequest(str(exc), ("body", self.field)) from None
        self.found.append((name, content_type))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.in_file:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise too_large(self.max_bytes)
        self.pending.append(data[start:end])

    def _part_end(self) -> None:
        self.in_file = False

    def _end(self) -> None:
        self.ended = True

    def flush(self) -> None:
        for data in self.pending:
            self.digest.update(data)
            self.spool.write(data)
        self.pending.clear()

    def received(self) -> ReceivedFile:
        if not self.ended:
            raise ProblemException(
                400, "invalid-multipart", "The body ends before its closing multipart boundary."
            )
        if not self.found:
            raise InvalidRequest(f"the `{self.field}` part is missing", ("body", self.field))
        [(name, content_type)] = self.found
        self.spool.seek(0)
        return ReceivedFile(self.spool, name, content_type, self.size, self.digest.hexdigest())


def _spool(directory: Path) -> BinaryIO:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=directory)


@asynccontextmanager
async def receive_file(
    request: Request, field: str, max_bytes: int, directory: Path
) -> AsyncIterator[ReceivedFile]:
    """The ``field`` part of the request's multipart body, spooled in ``directory``: 415 for
    another media type, 400 for a broken body, 413 past ``max_bytes`` (by Content-Length at
    once, else when the part passes it), 422 without that part or with a bad name."""
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    if media_type != b"multipart/form-data":
        raise ProblemException(
            415,
            "unsupported-media-type",
            f"Send the file as multipart/form-data with a `{field}` part "
            f"(curl -F {field}=@report.pdf).",
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise ProblemException(
            400, "invalid-multipart", "The multipart/form-data Content-Type names no boundary."
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + FRAMING_BYTES:
        raise too_large(max_bytes)
    spool = await anyio.to_thread.run_sync(_spool, directory)
    with spool:
        sink = _FileSink(field, spool, max_bytes)
        try:
            parser = MultipartParser(boundary, sink.callbacks())
            async for chunk in request.stream():
                parser.write(chunk)
                if sink.pending:
                    await anyio.to_thread.run_sync(sink.flush)
            parser.finalize()
        except FormParserError as exc:
            raise ProblemException(
                400, "invalid-multipart", f"The multipart body is malformed: {exc}"
            ) from None
        yield sink.received()
