"""Pure MIME layer: parse raw RFC 5322 messages into the Mailgate JSON message model."""

from .models import AttachmentPart, HeaderSummary, ParsedMessage, to_message
from .parse import find_part, html_to_text, make_preview, parse_message, parse_summary_headers

__all__ = [
    "AttachmentPart",
    "HeaderSummary",
    "ParsedMessage",
    "find_part",
    "html_to_text",
    "make_preview",
    "parse_message",
    "parse_summary_headers",
    "to_message",
]
