"""Errors of the service layer. The API maps each to a problem type."""

from __future__ import annotations


class NotFound(Exception):
    """The thing does not exist for this tenant (which includes: belongs to another)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind} not found")
        self.kind = kind


class InvalidRequest(Exception):
    """The request is well-formed but cannot apply to this resource."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
