"""api.multipart: a file part streamed in small chunks lands on disk whole, counted and
hashed; the limit stops it mid-stream; names come back as browsers and httpx escape them."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message

from mailgate.api.multipart import file_name, receive_file
from mailgate.api.problems import ProblemException
from mailgate.domain.uploads import ReceivedFile


def _request(body: bytes, content_type: str, chunk: int) -> Request:
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": i < len(chunks) - 1}
        for i, part in enumerate(chunks)
    ]

    async def receive() -> Message:
        return messages.pop(0)

    headers = [(b"content-type", content_type.encode())]
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


def _encoded(files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart body as httpx (and so the TestClient) writes it."""
    request = httpx.Request("POST", "http://x/", files=files)
    return request.read(), request.headers["content-type"]


def _receive(body: bytes, content_type: str, chunk: int, limit: int, tmp: Path) -> bytes:
    async def run() -> bytes:
        request = _request(body, content_type, chunk)
        async with receive_file(request, "file", limit, tmp) as received:
            assert isinstance(received, ReceivedFile)
            content = received.file.read()
            assert received.size == len(content)
            assert received.sha256 == hashlib.sha256(content).hexdigest()
            assert received.filename == 'a "b" ü.bin'
            return content

    return asyncio.run(run())


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**9])
def test_a_file_streamed_in_any_chunks_arrives_whole(tmp_path: Path, chunk: int) -> None:
    content = os.urandom(20_000)
    body, content_type = _encoded({"file": ('a "b" ü.bin', content)})
    assert _receive(body, content_type, chunk, 20_000, tmp_path) == content
    assert list(tmp_path.iterdir()) == []  # the spool has no name on disk


def test_the_limit_stops_a_part_mid_stream(tmp_path: Path) -> None:
    body, content_type = _encoded({"file": ('a "b" ü.bin', b"x" * 20_001)})
    with pytest.raises(ProblemException) as caught:
        _receive(body, content_type, 4096, 20_000, tmp_path)
    assert caught.value.status == 413 and caught.value.type == "payload-too-large"
    assert list(tmp_path.iterdir()) == []


def test_file_names_as_clients_escape_them() -> None:
    assert file_name(b"Q3 %22final%22.pdf") == 'Q3 "final".pdf'
    assert file_name(b"line%0D%0Abreak") == "line\r\nbreak"  # then refused as a name
    assert file_name(b"50% off.txt") == "50% off.txt"
    assert file_name("résumé.pdf".encode()) == "résumé.pdf"
    assert file_name("r\xe9sum\xe9.pdf".encode("latin-1")) == "résumé.pdf"  # no UTF-8
