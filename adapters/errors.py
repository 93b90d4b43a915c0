"""Errors every adapter raises, whatever the protocol. The API maps each to a problem type."""

from __future__ import annotations


class MailboxError(Exception):
    """Something went wrong talking to the mailbox. ``detail`` is safe to show a user."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MailboxAuthFailed(MailboxError):
    """The server refused the login; ``detail`` carries the server's own words."""


class MailboxUnreachable(MailboxError):
    """Nothing listening, connection refused or reset, or the host name does not resolve."""


class MailboxTimeout(MailboxError):
    """The server accepted the connection (or not) but did not answer in time."""


class MailboxTLSError(MailboxError):
    """The TLS handshake failed: untrusted or mismatched certificate, no TLS offered."""


class MailboxProtocolError(MailboxError):
    """The server answered something the protocol does not allow here."""


class Unsupported(MailboxError):
    """The server or protocol cannot do what was asked."""


class NoSuchObject(MailboxError):
    """The folder, message or part does not exist (any more), or the id is not one of ours."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"No such {kind}.")
        self.kind = kind


class InvalidArgument(MailboxError):
    """The request cannot apply to this mailbox as it is (e.g. delete INBOX, bad cursor)."""

    def __init__(self, detail: str, problem_type: str = "validation-error") -> None:
        super().__init__(detail)
        self.problem_type = problem_type


class AlreadyExists(MailboxError):
    """A folder of that name already exists."""
