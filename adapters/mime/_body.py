"""MIME structure: part numbering, body/attachment split and body text decoding.

Implements the JMAP body-part selection of RFC 8621 §4.1.4 over a tree parsed by
``email`` with ``policy.default``, numbering parts like IMAP (RFC 3501 §6.4.5).
"""

from __future__ import annotations

import html as _html
import re
from dataclasses import dataclass, field
from email.message import Message

from ._charset import clean_text, decode_bytes
from ._headers import decode_unstructured
from ._parts import (
    children,
    content_id,
    content_type,
    disposition,
    is_container,
    is_encapsulated,
    part_charset,
    part_filename,
    payload_bytes,
    sanitize_filename,
)

MAX_DEPTH = 40  # multipart nesting levels walked; deeper subtrees are ignored
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_PART_ID = re.compile(r"[1-9][0-9]{0,5}(?:\.[1-9][0-9]{0,5}){0,39}")


@dataclass(slots=True)
class Leaf:
    """A non-container MIME part with its IMAP part number and parent multipart subtype."""

    part_id: str
    part: Message
    content_type: str
    disposition: str | None
    filename: str | None
    content_id: str | None
    parent_subtype: str


@dataclass(slots=True)
class Structure:
    """Body parts (JMAP textBody/htmlBody) and attachments, each in document order."""

    text_body: list[Leaf] = field(default_factory=list)
    html_body: list[Leaf] = field(default_factory=list)
    attachments: list[Leaf] = field(default_factory=list)


def encapsulated_filename(part: Message) -> str | None:
    """A file name for an attached message/rfc822 (or RFC 6532 message/global): its subject
    plus ``.eml``, else ``message.eml``; ``None`` for other parts."""
    if content_type(part) not in ("message/rfc822", "message/global"):
        return None
    inner = children(part) if is_encapsulated(part) else []
    subject = decode_unstructured(inner[0], "subject") if inner else None
    safe = sanitize_filename(re.sub(r"[/\\]", "_", subject or "")[:200])
    return f"{safe}.eml" if safe else "message.eml"


def make_leaf(part_id: str, part: Message, parent_subtype: str = "mixed") -> Leaf:
    """Describe a non-container part (type, disposition, file name, Content-ID)."""
    return Leaf(
        part_id=part_id,
        part=part,
        content_type=content_type(part),
        disposition=disposition(part),
        filename=part_filename(part),
        content_id=content_id(part),
        parent_subtype=parent_subtype,
    )


def analyze(msg: Message) -> Structure:
    """Split a message into body parts and attachments (RFC 8621 §4.1.4 algorithm)."""
    result = Structure()
    if is_container(msg):
        subtype = content_type(msg).split("/", 1)[1]
        numbered = [(str(i), child) for i, child in enumerate(children(msg), 1)]
        in_alternative = subtype == "alternative"
        _walk(numbered, subtype, in_alternative, result, result.text_body, result.html_body, 1)
    else:
        _walk([("1", msg)], "mixed", False, result, result.text_body, result.html_body, 1)
    return result


def _walk(
    parts: list[tuple[str, Message]],
    multipart_subtype: str,
    in_alternative: bool,
    result: Structure,
    text_body: list[Leaf] | None,
    html_body: list[Leaf] | None,
    depth: int,
) -> None:
    """One level of the JMAP parseStructure walk; ``None`` lists are switched off."""
    text_len = len(text_body) if text_body is not None else -1
    html_len = len(html_body) if html_body is not None else -1
    for index, (part_id, part) in enumerate(parts):
        if is_container(part):
            if depth >= MAX_DEPTH:
                continue  # hostile nesting: the subtree is ignored, not listed
            subtype = content_type(part).split("/", 1)[1]
            numbered = [(f"{part_id}.{i}", child) for i, child in enumerate(children(part), 1)]
            nested_alternative = in_alternative or subtype == "alternative"
            _walk(numbered, subtype, nested_alternative, result, text_body, html_body, depth + 1)
            continue
        leaf = make_leaf(part_id, part, multipart_subtype)
        is_body = (
            leaf.disposition != "attachment"
            and leaf.content_type in _BODY_TYPES
            and (index == 0 or (multipart_subtype != "related" and not leaf.filename))
        )
        if not is_body:
            result.attachments.append(leaf)
            continue
        plain = leaf.content_type == "text/plain"
        if multipart_subtype == "alternative":
            target = text_body if plain else html_body
            if target is not None:
                target.append(leaf)
            continue
        if in_alternative:
            if plain:
                html_body = None
            else:
                text_body = None
        if text_body is not None:
            text_body.append(leaf)
        if html_body is not None:
            html_body.append(leaf)
    if multipart_subtype == "alternative" and text_body is not None and html_body is not None:
        if text_len == len(text_body) and html_len != len(html_body):
            text_body.extend(html_body[html_len:])  # only HTML found: use it for both
        if html_len == len(html_body) and text_len != len(text_body):
            html_body.extend(text_body[text_len:])  # only plain text found


def leaf_text(leaf: Leaf) -> str:
    """Decode a text part to ``str`` with charset fallbacks; CRLF becomes LF."""
    data = payload_bytes(leaf.part)
    charset = part_charset(leaf.part)
    if charset is None and leaf.content_type == "text/html":
        sniffed = _META_CHARSET.search(data[:4096])
        charset = sniffed.group(1).decode("ascii") if sniffed else None
    text = decode_bytes(data, charset)
    if text.startswith("\ufeff"):
        text = text[1:]
    return clean_text(text.replace("\r\n", "\n"))


def plain_in_html(text: str) -> str:
    """Wrap a text/plain part for inclusion in an HTML body."""
    return f'<pre style="white-space: pre-wrap">{_html.escape(text)}</pre>'


def locate(root: Message, part_id: str) -> Message | None:
    """Find a part by IMAP part number (RFC 3501 §6.4.5), descending into message/rfc822.

    In a message whose body is not multipart, part ``1`` is that body itself.
    """
    if not _PART_ID.fullmatch(part_id):
        return None
    container: Message = root
    message_context = True  # ``container`` is a (top-level or encapsulated) message
    node: Message | None = None
    for number in (int(n) for n in part_id.split(".")):
        if is_container(container):
            subparts = children(container)
            if number > len(subparts):
                return None
            node = subparts[number - 1]
        elif message_context and number == 1:
            node = container
        else:
            return None
        if is_encapsulated(node) and children(node):
            container, message_context = children(node)[0], True
        else:
            container, message_context = node, False
    return node
