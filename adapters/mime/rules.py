"""Whether a MIME part is an attachment in a message list (the ``has_attachments`` flag).

One rule for every path that decides it: the IMAP list (from BODYSTRUCTURE, RFC 3501
section 7.4.2, without the body), the whole message (from the parsed MIME tree) and the
POP3 store (from the raw bytes), so the same message shows the same flag over IMAP and
POP3. It uses only what BODYSTRUCTURE carries; whether the HTML really references a
Content-ID would need the body.
"""

from __future__ import annotations

from email.message import Message

MAX_DEPTH = 30  # hostile nesting: deeper parts are not looked at


def counts_as_attachment(
    content_type: str,
    disposition: str | None,
    filename: str | None,
    content_id: str | None,
    in_related: bool,
) -> bool:
    """``Content-Disposition: attachment`` always counts. A part with a Content-ID inside
    multipart/related is an inline resource of an HTML body (RFC 2387), not an attachment.
    Otherwise a file name counts, and so does any leaf that is not text (an image, a PDF,
    an attached message/rfc822)."""
    if (disposition or "").lower() == "attachment":
        return True
    if in_related and content_id:
        return False
    if filename:
        return True
    return not content_type.lower().startswith(("text/", "multipart/"))


def message_has_attachments(message: Message, max_parts: int = 500) -> bool:
    """:func:`counts_as_attachment` over a parsed message's leaves, in the same walk as
    BODYSTRUCTURE's: multiparts are opened, an attached message/rfc822 is one leaf, and
    "inside multipart/related" holds for every descendant of one."""
    stack: list[tuple[Message, bool, int]] = [(message, False, 0)]
    seen = 0
    while stack and seen < max_parts:
        part, in_related, depth = stack.pop()
        seen += 1
        kind = part.get_content_type()
        if part.is_multipart() and kind.startswith("multipart/"):
            payload = part.get_payload()
            if depth < MAX_DEPTH and isinstance(payload, list):
                related = in_related or kind == "multipart/related"
                stack.extend(
                    (child, related, depth + 1)
                    for child in reversed(payload)
                    if isinstance(child, Message)
                )
            continue
        if counts_as_attachment(
            kind,
            part.get_content_disposition(),
            part.get_filename(),
            part.get("Content-ID"),
            in_related,
        ):
            return True
    return False
