"""LIST responses (RFC 3501 section 7.2.2), read by hand.

imapclient's response lexer treats ``[`` as the start of a section, so a folder named
``x[y`` sent as an atom (Dovecot does) cannot be parsed (``No closing ']'``), and one such
folder made every folder list fail. This reads each line on its own: the flags, the
delimiter (a quoted character or NIL) and the name, whether an atom (any bytes up to the
end of the line, brackets included), a quoted string (with ``\\"`` and ``\\\\``) or a
literal. A line that still makes no sense is skipped and logged: one unreadable folder never
breaks the list or the watcher.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from imapclient.imap_utf7 import decode as decode_utf7

log = logging.getLogger("mailgate.imap")

Listed = tuple[tuple[bytes, ...], str | None, str]
"""(flags, delimiter, name) as imapclient's list_folders gives them."""


class _Unreadable(ValueError):
    pass


def parse_list(items: Iterable[bytes | tuple[bytes, bytes] | None]) -> list[Listed]:
    """The folders of imaplib's untagged LIST data: each item a line (bytes) or, for a name
    sent as a literal, a (line up to the literal, literal bytes) pair."""
    found: list[Listed] = []
    for item in items:
        if not item:
            continue
        try:
            found.append(_one(item))
        except _Unreadable as exc:
            log.warning("skipping a LIST line that cannot be read", extra={"line": repr(item)})
            log.debug("why: %s", exc)
    return found


def _one(item: bytes | tuple[bytes, bytes]) -> Listed:
    literal: bytes | None = None
    if isinstance(item, tuple):
        line, literal = item[0], item[1]
    else:
        line = item
    if not line.startswith(b"("):
        raise _Unreadable("no flag list")
    close = line.find(b")")
    if close < 0:
        raise _Unreadable("unclosed flag list")
    flags = tuple(line[1:close].split())
    rest = line[close + 1 :].lstrip(b" ")
    delimiter, rest = _delimiter(rest)
    rest = rest.lstrip(b" ")
    if literal is not None:
        if not rest.startswith(b"{"):
            raise _Unreadable("a literal where no name was expected")
        raw = literal
    elif rest.startswith(b'"'):
        raw = _quoted(rest)
    else:
        raw = rest.rstrip(b"\r\n ")
    if not raw:
        raise _Unreadable("no name")
    return flags, delimiter, _name(raw)


def _delimiter(rest: bytes) -> tuple[str | None, bytes]:
    if rest[:3].upper() == b"NIL":
        return None, rest[3:]
    if rest.startswith(b'"\\'):  # "\\" or "\""
        if len(rest) < 4 or rest[3:4] != b'"':
            raise _Unreadable("bad escaped delimiter")
        return rest[2:3].decode("latin-1"), rest[4:]
    if rest.startswith(b'"') and len(rest) >= 3 and rest[2:3] == b'"':
        return rest[1:2].decode("latin-1"), rest[3:]
    raise _Unreadable("bad delimiter")


def _quoted(rest: bytes) -> bytes:
    out = bytearray()
    escaped = False
    for byte in rest[1:]:
        if escaped:
            out.append(byte)
            escaped = False
        elif byte == 0x5C:  # backslash
            escaped = True
        elif byte == 0x22:  # the closing quote
            return bytes(out)
        else:
            out.append(byte)
    raise _Unreadable("unclosed quoted name")


def _name(raw: bytes) -> str:
    """Modified UTF-7 (RFC 3501 section 5.1.3) to text; a name that is not valid modified
    UTF-7 (8-bit bytes some servers send) is read as UTF-8, else Latin-1."""
    if raw.isascii():
        try:
            return str(decode_utf7(raw))
        except (ValueError, UnicodeError):
            return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_status(items: Iterable[bytes | tuple[bytes, bytes] | None]) -> dict[bytes, int]:
    """The attributes of a STATUS answer (RFC 3501 section 7.2.4): ``name (KEY n KEY n)``.
    Only the parenthesised list at the end is read, so no folder name can confuse it; with
    several answers (NOTIFY may add others), the last one is this command's."""
    found: dict[bytes, int] = {}
    for item in items:
        if not item:
            continue
        line = item[-1] if isinstance(item, tuple) else item
        if isinstance(item, tuple):  # name as a literal: the list follows in the next item
            continue
        open_ = line.rfind(b"(")
        close = line.rfind(b")")
        if open_ < 0 or close < open_:
            continue
        words = line[open_ + 1 : close].split()
        found = {}
        for key, value in zip(words[::2], words[1::2], strict=False):
            if value.isdigit():
                found[key.upper()] = int(value)
    return found
