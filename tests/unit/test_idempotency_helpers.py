"""The pure parts of api.idempotency: the header, the caller, the request's fingerprint, what
is kept, and what the OpenAPI document says."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cryptography.fernet import Fernet

from mailgate.api.idempotency import (
    HEADER,
    KEY_PATTERN,
    Fingerprint,
    bearer_of,
    document_idempotency,
    is_kept,
    parse_key,
)
from mailgate.gateway.crypto import PasswordBox, SecretKeyError


@pytest.mark.parametrize(
    "raw",
    [b"a", b"!", b"~", b"order-42", b"x" * 255, b"with inner  spaces", b"4f0c2a9e-1b7d-4c3a"],
)
def test_keys_of_printable_ascii_up_to_255_characters(raw: bytes) -> None:
    assert parse_key(raw) == raw.decode()


@pytest.mark.parametrize(
    "raw",
    [b"", b" ", b"x" * 256, b" lead", b"trail ", b"tab\tin", b"new\nline", b"caf\xc3\xa9", b"\x7f"],
)
def test_malformed_keys(raw: bytes) -> None:
    assert parse_key(raw) is None


def test_the_documented_pattern_is_the_one_checked() -> None:
    import re

    pattern = re.compile(KEY_PATTERN)
    for raw in [b"a", b"x" * 255, b"a b"]:
        assert pattern.search(raw.decode()) and parse_key(raw)
    for text in ["", " a", "a ", "x" * 256]:
        assert not pattern.search(text) and parse_key(text.encode()) is None


def test_the_caller_is_the_bearer_key() -> None:
    assert bearer_of([(b"authorization", b"Bearer mg_key")]) == "mg_key"
    assert bearer_of([(b"authorization", b"bearer mg_key")]) == "mg_key"
    assert bearer_of([(b"accept", b"*/*"), (b"authorization", b"Bearer k")]) == "k"
    for value in [b"Basic dXNlcjpw", b"Bearer", b"Bearer ", b"mg_key"]:
        assert bearer_of([(b"authorization", value)]) is None
    assert bearer_of([]) is None


def _fingerprint(method: str, path: bytes, query: bytes, *chunks: bytes) -> str:
    fingerprint = Fingerprint(method, path, query)
    for chunk in chunks:
        fingerprint.update(chunk)
    return fingerprint.hexdigest()


def test_the_fingerprint_is_the_request_however_its_body_is_cut() -> None:
    whole = _fingerprint("POST", b"/v1/webhooks", b"", b'{"url": "x"}')
    assert _fingerprint("POST", b"/v1/webhooks", b"", b'{"url"', b"", b': "x"}') == whole
    others = [
        _fingerprint("POST", b"/v1/webhooks", b"", b'{"url": "y"}'),
        _fingerprint("POST", b"/v1/webhooks", b"a=1", b'{"url": "x"}'),
        _fingerprint("POST", b"/v1/webhooks/", b"", b'{"url": "x"}'),
        _fingerprint("PUT", b"/v1/webhooks", b"", b'{"url": "x"}'),
        # the parts are length-prefixed: a query cannot pass for a path
        _fingerprint("POST", b"/v1/webhooksa=1", b"", b'{"url": "x"}'),
        _fingerprint("POST", b"/v1/webhooks", b"", b'{"url": "x"}', b" "),
    ]
    assert whole not in others and len(set(others)) == len(others)
    scope = {"method": "POST", "path": "/v1/webhooks", "raw_path": b"/v1/webhooks"}
    of_scope = Fingerprint.of({**scope, "query_string": b""})
    of_scope.update(b'{"url": "x"}')
    assert of_scope.hexdigest() == whole


def test_what_is_kept() -> None:
    assert all(is_kept(status) for status in (200, 201, 202, 204, 400, 404, 409, 413, 422))
    assert not any(is_kept(status) for status in (401, 403, 405, 429, 500, 502, 503, 504))


def _spec() -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "paths": {
            "/v1/things": {
                "get": {"responses": {"200": {"description": "OK"}}},
                "post": {"responses": {"201": {"description": "Created"}}},
            },
            "/v1/things/{id}/send": {
                "post": {
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {}},
                        {
                            "name": HEADER,
                            "in": "header",
                            "required": False,
                            "description": "Route's own words.",
                            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        },
                    ],
                    "responses": {"409": {"description": "Already", "content": problem}},
                }
            },
        }
    }


def test_every_post_documents_the_header_once_and_its_problems() -> None:
    spec = _spec()
    document_idempotency(spec)
    things = spec["paths"]["/v1/things"]
    assert "parameters" not in things["get"]
    [header] = things["post"]["parameters"]
    assert header["name"] == HEADER and header["in"] == "header" and not header["required"]
    assert header["schema"]["maxLength"] == 255 and header["schema"]["pattern"] == KEY_PATTERN
    assert set(things["post"]["responses"]) == {"201", "400", "409"}
    send = spec["paths"]["/v1/things/{id}/send"]["post"]
    names = [p["name"] for p in send["parameters"]]
    assert names == ["id", HEADER]
    assert send["parameters"][1]["description"].endswith("Route's own words.")
    assert send["responses"]["409"]["description"] == "Already"  # kept as it was
    again = copy.deepcopy(spec)
    document_idempotency(again)
    assert again["paths"]["/v1/things"] == spec["paths"]["/v1/things"]


def test_kept_answers_are_sealed_with_the_secret_keys() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = PasswordBox([old]).seal(b'{"secret": "whsec_x"}\x00\xff')
    assert b"whsec_x" not in sealed
    assert PasswordBox([new, old]).unseal(sealed) == b'{"secret": "whsec_x"}\x00\xff'
    with pytest.raises(SecretKeyError):
        PasswordBox([new]).unseal(sealed)
