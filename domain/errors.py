"""The one error hierarchy of Mailgate. Every layer raises these; the HTTP edge maps each
``type`` (a stable RFC 9457 problem type) to a status in one table (api.problems).

``detail`` is always safe to show a user: it never holds a password or a token.
"""

from __future__ import annotations

from typing import ClassVar


class MailgateError(Exception):
    """Base of every error a request can end in."""

    type: ClassVar[str] = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# -- the request --------------------------------------------------------------------------


class NotFound(MailgateError):
    """The thing does not exist (any more) for this tenant, or the id is not one of ours
    (another tenant's ids included: a 404, never a 403 that leaks existence)."""

    type = "not-found"

    def __init__(self, kind: str) -> None:
        super().__init__(f"No such {kind}.")
        self.kind = kind


class InvalidRequest(MailgateError):
    """Well-formed, but it cannot apply to this resource as it is (e.g. delete INBOX).
    ``loc`` names the request field at fault, as schema validation errors do."""

    type = "validation-error"

    def __init__(self, detail: str, loc: tuple[str | int, ...] | None = None) -> None:
        super().__init__(detail)
        self.loc = loc


class InvalidCursor(InvalidRequest):
    """A cursor made for another folder or other filters, or not a cursor at all."""

    type = "invalid-cursor"


class InvalidFolderId(InvalidRequest):
    """A folder id in the request names no folder of this account."""

    type = "invalid-folder-id"


class CursorExpired(MailgateError):
    """The folder was reset (UIDVALIDITY) since the cursor was made: list it again."""

    type = "cursor-expired"


class AlreadyExists(MailgateError):
    """A folder of that name already exists."""

    type = "already-exists"


class InUse(MailgateError):
    """It cannot go while other things use it (an OAuth2 app with accounts)."""

    type = "in-use"


class OAuth2StateInvalid(MailgateError):
    """A sign-in callback whose ``state`` is unknown, used already or expired: nothing to
    finish, and nowhere safe to send the browser."""

    type = "oauth2-state-invalid"


class OAuth2ProviderError(MailgateError):
    """The OAuth2 provider refused the sign-in (the user declined, a bad code) or could not
    be reached; ``detail`` carries the provider's words."""

    type = "oauth2-provider-error"


class OAuth2WrongMailbox(MailgateError):
    """Reauthorizing an account signed in to another mailbox than the account's."""

    type = "oauth2-wrong-mailbox"


class NoTrashFolder(MailgateError):
    """A delete to the trash, in a mailbox that has no trash folder."""

    type = "no-trash-folder"


class Unsupported(MailgateError):
    """The server or the protocol cannot do what was asked."""

    type = "unsupported"


# -- the mailbox --------------------------------------------------------------------------


class MailboxError(MailgateError):
    """Talking to the mail server failed."""

    type = "mailbox-error"


class MailboxAuthFailed(MailboxError):
    """The server refused the login; ``detail`` carries the server's own words."""

    type = "mailbox-auth-failed"


class MailboxUnreachable(MailboxError):
    """Nothing listening, connection refused or reset, or the host name does not resolve."""

    type = "mailbox-unreachable"


class MailboxHostNotAllowed(MailboxError):
    """The mailbox host resolves to a private, loopback or link-local address, and this
    deployment refuses those (MAILGATE_ALLOW_PRIVATE_MAILBOXES=false). Nothing is
    connected to, so the answer says nothing about what listens there."""

    type = "mailbox-host-not-allowed"


class MailboxTimeout(MailboxError):
    """The server accepted the connection (or not) but did not answer in time."""

    type = "mailbox-timeout"


class MailboxTLSError(MailboxError):
    """The TLS handshake failed: untrusted or mismatched certificate, no TLS offered."""

    type = "mailbox-tls-failed"


class MailboxBusy(MailboxError):
    """The mailbox is there but will not open now: another session holds its lock (POP3
    ``[IN-USE]``), or the server is in trouble for a moment (``[SYS/TEMP]``, RFC 3206).
    Nothing is wrong with the account: the next round tries again. ``code`` is the response
    code the server gave."""

    type = "mailbox-busy"

    def __init__(self, detail: str, code: str = "") -> None:
        super().__init__(detail)
        self.code = code


class MailboxProtocolError(MailboxError):
    """The server answered something the protocol does not allow here."""

    type = "mailbox-protocol-error"


class CannotCalculateChanges(MailgateError):
    """The client's change-feed state is unknown here (too old, too new, or not a state)."""

    type = "cannot-calculate-changes"
