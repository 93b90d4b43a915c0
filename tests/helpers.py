"""Assertions shared by the API tests."""

from __future__ import annotations

import httpx


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, object]:
    """The answer is problem+json with this status and type; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == type_, body
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]
