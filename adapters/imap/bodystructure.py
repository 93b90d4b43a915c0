"""Reading BODYSTRUCTURE (RFC 3501 §7.4.2) as imapclient returns it, with part numbers (§6.4.5).

imapclient gives a :class:`imapclient.response_types.BodyData`: a multipart is
``([child, ...], subtype, params, disposition, language, location)`` with BodyData
children, a single part is the flat field tuple. The body inside a message/rfc822 part is
left as parsed, so there a multipart is ``(child, child, ..., subtype, ...)``. Both shapes
are handled. Strings arrive as bytes (quoted strings and literals alike), numbers as int,
NIL as None. Nothing here raises on a malformed structure: broken parts are skipped.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.utils import collapse_rfc2231_value, decode_rfc2231

from mailgate.adapters.mime.rules import counts_as_attachment

__all__ = ["PartInfo", "find_part", "first_text_part", "has_attachments", "iter_parts"]


@dataclass(frozen=True)
class PartInfo:
    """One leaf part: what to FETCH (``BODY.PEEK[part_id]``) and how to decode it."""

    part_id: str
    content_type: str
    encoding: str
    size: int
    charset: str | None
    filename: str | None
    disposition: str | None
    content_id: str | None


_Node = Sequence[object]
_PARAM_KEY = re.compile(r"(?P<name>[^*]+)(?:\*(?P<num>\d+))?(?P<ext>\*)?")
_MAX_DEPTH = 100


# -- field helpers ------------------------------------------------------------------------------


def _str(value: object) -> str | None:
    """A string field: bytes as UTF-8 (8-bit servers), else Latin-1; None for NIL/other."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    if isinstance(value, str):
        return value
    return None


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    text = _str(value)
    if text is not None and text.strip().isdigit():
        return int(text.strip())
    return 0


def _params(value: object) -> list[tuple[str, str]]:
    """A body parameter list ``(key value key value ...)`` as (lower key, value) pairs."""
    if not isinstance(value, tuple | list):
        return []
    pairs = []
    for i in range(0, len(value) - 1, 2):
        key, val = _str(value[i]), _str(value[i + 1])
        if key is not None and val is not None:
            pairs.append((key.strip().lower(), val))
    return pairs


def _decode_2047(text: str) -> str:
    """Decode RFC 2047 encoded-words (used, against the rules, inside parameters too)."""
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


def _param(params: list[tuple[str, str]], name: str) -> str | None:
    """Parameter ``name`` with RFC 2231 continuations and charsets applied (RFC 2231 §3-4)."""
    plain: str | None = None
    segments: list[tuple[int, str, bool]] = []
    for key, value in params:
        match = _PARAM_KEY.fullmatch(key)
        if match is None or match["name"] != name:
            continue
        if match["num"] is None and not match["ext"]:
            if plain is None:
                plain = value
        else:
            segments.append((int(match["num"] or 0), value, bool(match["ext"])))
    if segments:
        segments.sort(key=lambda segment: segment[0])
        charset: str | None = None
        language: str | None = None
        pieces = []
        for position, (_, value, extended) in enumerate(segments):
            if extended:
                if position == 0:
                    charset, language, value = decode_rfc2231(value)
                value = urllib.parse.unquote(value, encoding="latin-1")
            pieces.append(value)
        text = "".join(pieces)
        if segments[0][2]:
            if not text.isascii() and any(ord(char) > 0xFF for char in text):
                return text  # raw 8-bit UTF-8 that was never %-encoded
            try:  # the %-decoded octets, as Latin-1 characters, in the declared charset
                return collapse_rfc2231_value(
                    (charset or "utf-8", language or "", text), fallback_charset="utf-8"
                )
            except Exception:
                return text
        return _decode_2047(text)
    return None if plain is None else _decode_2047(plain)


def _filename(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


# -- shapes ------------------------------------------------------------------------------------


def _as_node(value: object) -> _Node | None:
    return value if isinstance(value, tuple | list) and len(value) > 0 else None


def _multipart(node: _Node) -> tuple[list[_Node], _Node] | None:
    """(children, extension fields from the subtype on) if ``node`` is a multipart."""
    first = node[0]
    if isinstance(first, list):  # BodyData.create nested the children into a list
        candidates, ext = first, node[1:]
    elif isinstance(first, tuple):  # raw parser output (inside message/rfc822)
        count = 0
        while count < len(node) and isinstance(node[count], tuple | list):
            count += 1
        candidates, ext = list(node[:count]), node[count:]
    else:
        return None
    children = [child for child in map(_as_node, candidates) if child is not None]
    return children, ext


def _media(node: _Node) -> tuple[str, str]:
    main = (_str(node[0]) or "").strip().lower()
    sub = (_str(node[1]) if len(node) > 1 else None) or ""
    if not main:
        return "application", "octet-stream"
    return main, sub.strip().lower()


def _encapsulated(node: _Node) -> _Node | None:
    """The body structure inside a message/rfc822 (or message/global, RFC 6532) part."""
    if _multipart(node) is not None or _media(node) not in {
        ("message", "rfc822"),
        ("message", "global"),
    }:
        return None
    if len(node) > 9 and isinstance(node[7], tuple | list):  # envelope, then body
        return _as_node(node[8])
    return None


def _disposition_index(node: _Node) -> int:
    """Where the body-fld-dsp extension field sits (RFC 3501 §9, body-ext-1part)."""
    if _encapsulated(node) is not None:
        return 11  # envelope, body, lines, md5
    if _media(node)[0] == "text":
        return 9  # lines, md5
    return 8  # md5


def _info(node: _Node, part_id: str) -> PartInfo:
    main, sub = _media(node)
    params = _params(node[2]) if len(node) > 2 else []
    content_id = _str(node[3]) if len(node) > 3 else None
    if content_id is not None:
        content_id = content_id.strip().strip("<>").strip() or None
    encoding = (_str(node[5]) if len(node) > 5 else None) or "7bit"
    index = _disposition_index(node)
    disposition: str | None = None
    dsp_params: list[tuple[str, str]] = []
    dsp = node[index] if len(node) > index else None
    if isinstance(dsp, tuple | list) and dsp:
        disposition = _str(dsp[0])
        dsp_params = _params(dsp[1]) if len(dsp) > 1 else []
    elif dsp is not None:
        disposition = _str(dsp)
    if disposition is not None:
        disposition = disposition.strip().lower() or None
    charset = _param(params, "charset")
    if charset is not None:
        charset = charset.strip().strip('"').lower() or None
    return PartInfo(
        part_id=part_id,
        content_type=f"{main}/{sub}" if sub else main,
        encoding=encoding.strip().lower() or "7bit",
        size=_int(node[6]) if len(node) > 6 else 0,
        charset=charset,
        filename=_filename(_param(dsp_params, "filename")) or _filename(_param(params, "name")),
        disposition=disposition,
        content_id=content_id,
    )


# -- traversal ---------------------------------------------------------------------------------


def _leaves(
    node: _Node, prefix: str, in_related: bool, depth: int
) -> Iterator[tuple[_Node, str, bool]]:
    """(leaf, part id, inside multipart/related) in document order, not into message/rfc822.

    ``node`` is a part of a multipart (prefix is its number) or, with prefix "", a body.
    """
    if depth > _MAX_DEPTH:
        return
    split = _multipart(node)
    if split is None:
        yield node, prefix or "1", in_related
        return
    children, ext = split
    related = in_related or (bool(ext) and (_str(ext[0]) or "").strip().lower() == "related")
    for number, child in enumerate(children, start=1):
        child_id = f"{prefix}.{number}" if prefix else str(number)
        yield from _leaves(child, child_id, related, depth + 1)


def _root(bodystructure: object) -> _Node | None:
    node = _as_node(bodystructure)
    if node is None or (not isinstance(node[0], tuple | list) and len(node) < 2):
        return None
    return node


def _parse_id(part_id: str) -> list[int] | None:
    if not isinstance(part_id, str):
        return None
    pieces = part_id.strip().split(".")
    if len(pieces) > _MAX_DEPTH:
        return None
    if not all(piece.isdigit() and piece.isascii() for piece in pieces):
        return None
    numbers = [int(piece) for piece in pieces]
    return numbers if all(number > 0 for number in numbers) else None


def _in_body(body: _Node, path: list[int]) -> _Node | None:
    """Resolve ``path`` inside a message body (the top level, or inside message/rfc822)."""
    split = _multipart(body)
    if split is None:  # a single-part body is part 1 (RFC 3501 §6.4.5)
        return _in_part(body, path[1:]) if path[0] == 1 else None
    return _in_children(split[0], path)


def _in_children(children: list[_Node], path: list[int]) -> _Node | None:
    if path[0] > len(children):
        return None
    return _in_part(children[path[0] - 1], path[1:])


def _in_part(node: _Node, rest: list[int]) -> _Node | None:
    if not rest:
        return node
    split = _multipart(node)
    if split is not None:
        return _in_children(split[0], rest)
    inner = _encapsulated(node)
    return None if inner is None else _in_body(inner, rest)


# -- public ------------------------------------------------------------------------------------


def iter_parts(bodystructure: object) -> list[PartInfo]:
    """All leaf parts in document order, numbered per RFC 3501 §6.4.5.

    A message/rfc822 part is a leaf here (its inner parts are reachable with find_part).
    """
    try:
        root = _root(bodystructure)
        if root is None:
            return []
        return [_info(leaf, part_id) for leaf, part_id, _ in _leaves(root, "", False, 0)]
    except Exception:
        return []


def find_part(bodystructure: object, part_id: str) -> PartInfo | None:
    """The leaf numbered ``part_id``, also inside message/rfc822 parts ("2.1"); else None.

    Multipart containers have numbers too but are not returned: they have no transfer
    encoding to undo.
    """
    try:
        root = _root(bodystructure)
        path = _parse_id(part_id)
        if root is None or path is None:
            return None
        node = _in_body(root, path)
        if node is None or _multipart(node) is not None:
            return None
        return _info(node, ".".join(map(str, path)))
    except Exception:
        return None


def has_attachments(bodystructure: object) -> bool:
    """Whether any leaf counts as an attachment (adapters.mime.rules)."""
    try:
        root = _root(bodystructure)
        if root is None:
            return False
        return any(
            _counts(_info(leaf, part_id), related)
            for leaf, part_id, related in _leaves(root, "", False, 0)
        )
    except Exception:
        return False


def _counts(part: PartInfo, in_related: bool) -> bool:
    return counts_as_attachment(
        part.content_type, part.disposition, part.filename, part.content_id, in_related
    )


def first_text_part(bodystructure: object) -> PartInfo | None:
    """The body text for a preview: the first text/plain leaf that is not an attachment
    (no ``attachment`` disposition, no file name), else the first such text/html leaf.
    """
    parts = iter_parts(bodystructure)
    for wanted in ("text/plain", "text/html"):
        for part in parts:
            if (
                part.content_type == wanted
                and part.disposition != "attachment"
                and part.filename is None
            ):
                return part
    return None
