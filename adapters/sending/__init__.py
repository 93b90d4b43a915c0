"""Sending: a message built from a compose request (compose) and submitted over SMTP (smtp).
The service layer and the send worker use what this package exports, nothing below it."""

from mailgate.adapters.sending.compose import (
    AttachmentPart,
    Composed,
    Original,
    compose,
    for_sending,
)
from mailgate.adapters.sending.smtp import Accepted, SmtpRefused, close_quietly, open_smtp, send

__all__ = [
    "Accepted",
    "AttachmentPart",
    "Composed",
    "Original",
    "SmtpRefused",
    "close_quietly",
    "compose",
    "for_sending",
    "open_smtp",
    "send",
]
