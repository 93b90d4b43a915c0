"""What imapclient does not offer, done through its internals, in this one module.

imapclient has no public way to read the session state, drop stale untagged responses, send
a command it does not know (NOTIFY, RFC 5465; ESEARCH's SEARCH RETURN, RFC 4731), read the
untagged codes of UID COPY/MOVE (COPYUID, RFC 4315), read each FETCH answer on its own (its
``fetch`` merges them) or see the lines a connection sent and read. Everything here leans on
``IMAPClient._imap`` (its imaplib.IMAP4: ``_command``, ``_command_complete``,
``_untagged_response``, the ``_mesg`` debug hook, ``authenticate``), ``_raw_command*``,
``_checkok``, ``_normalise_folder``, ``_cached_capabilities`` and imapclient's response
parser; the imapclient range in pyproject.toml is the one tests/unit/test_imap_wire.py
checks them on.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from imapclient import IMAPClient
from imapclient.datetime_util import parse_to_datetime
from imapclient.exceptions import LoginError, ProtocolError
from imapclient.imapclient import _literal, join_message_ids, seq_to_parenstr_upper
from imapclient.response_parser import gen_parsed_response, parse_message_list
from imapclient.response_types import BodyData

from mailgate.adapters.imap.search import Text
from mailgate.adapters.sasl import describe_challenge


def is_selected(client: IMAPClient) -> bool:
    """Whether a folder is selected (imaplib's state; imapclient does not expose it)."""
    return bool(client._imap.state == "SELECTED")


# Untagged responses a server sends unasked to tell of a change: under NOTIFY (RFC 5465)
# STATUS of another folder and LIST of a folder made or renamed; in the selected folder
# EXISTS, EXPUNGE, FETCH (flags) and VANISHED (RFC 7162).
NEWS = ("STATUS", "LIST", "EXISTS", "EXPUNGE", "FETCH", "VANISHED")
_dropped_news: WeakKeyDictionary[IMAPClient, int] = WeakKeyDictionary()


def drop_untagged(client: IMAPClient, *names: str) -> None:
    """Forget untagged responses of these names the server sent unasked (e.g. under NOTIFY),
    so the next command's answer is only its own. STATUS and LIST dropped so are counted
    (:func:`dropped_news`): they told of a change."""
    for name in names:
        dropped = client._imap.untagged_responses.pop(name, None)
        if dropped and name in ("STATUS", "LIST"):
            _dropped_news[client] = _dropped_news.get(client, 0) + len(dropped)


def buffered(client: IMAPClient) -> bool:
    """Whether bytes the server sent already wait in imaplib's read buffer (it reads ahead),
    where a selector watching the socket cannot see them: looked at without blocking."""
    sock = client.socket()
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False  # nothing buffered, nothing to read either
    finally:
        sock.settimeout(timeout)


def dropped_news(client: IMAPClient) -> int:
    """How many unasked STATUS and LIST responses :func:`drop_untagged` has dropped."""
    return _dropped_news.get(client, 0)


def take_news(client: IMAPClient, names: Sequence[str] = NEWS) -> bool:
    """Whether the server told of a change unasked (responses of ``names``, by default all
    of :data:`NEWS`) since these were last taken; forgets them."""
    pending = client._imap.untagged_responses
    return bool([name for name in names if pending.pop(name, None)])


def take_untagged(client: IMAPClient, name: str) -> list[Any]:
    """The untagged responses (or response codes) of this name since they were last taken."""
    return list(client._imap.untagged_responses.pop(name, None) or [])


def command(client: IMAPClient, name: bytes, args: list[bytes]) -> str:
    """A command imapclient lacks, tagged; returns the tagged status ("OK")."""
    typ, _ = client._raw_command(name, args, uid=False)
    return str(typ)


def command_untagged(client: IMAPClient, name: bytes, args: list[bytes], response: str) -> Any:
    """A UID command imapclient lacks; returns the data of its untagged ``response``."""
    return client._raw_command_untagged(name, args, response_name=response, uid=True)


def uid_command(client: IMAPClient, name: str, uids: bytes, folder: str) -> tuple[str, list[Any]]:
    """``UID <name> <uids> <folder>`` (COPY, MOVE) with the tagged answer's own text, where
    imapclient would drop the COPYUID code (RFC 4315 section 3)."""
    typ, data = client._imap._simple_command("UID", name, uids, client._normalise_folder(folder))
    return str(typ), list(data)


def noop(client: IMAPClient) -> None:
    """NOOP, leaving what came with it in imaplib's untagged responses (:func:`take_news`)
    unparsed: imapclient's ``noop`` lexes them, and fails on a FETCH of a keyword that holds
    "[" (see :func:`_bracket_flags_quoted`)."""
    typ, data = client._imap._simple_command("NOOP")
    client._checkok("noop", typ, data)


# -- IDLE news, unparsed (RFC 2177) -------------------------------------------------------------
# imapclient's idle_check and idle_done lex every line, as noop does; a watcher needs no more
# of a line than the name of the response.


def idle_news(client: IMAPClient) -> list[bytes]:
    """The lines the server sent while idling that can be read now, as sent: imapclient's
    ``idle_check(timeout=0)`` without the parse. Empty when none could be read (the peer
    closed the connection)."""
    sock = client.socket()
    sock.settimeout(None)
    sock.setblocking(False)
    lines: list[bytes] = []
    try:
        while True:
            try:
                lines.append(client._imap._get_line())
            except OSError:  # nothing more to read now (TLS: SSLWantReadError)
                break
            except imaplib.IMAP4.abort as exc:
                if "EOF" in str(exc.args[0] if exc.args else ""):
                    break  # what a non-blocking read of nothing looks like to imaplib
                raise
    finally:
        sock.setblocking(True)
        client._set_read_timeout()
    return lines


def idle_done(client: IMAPClient) -> None:
    """DONE, and IDLE's tagged answer; the news that came before it stay in imaplib's
    untagged responses, unparsed (imapclient's ``idle_done`` lexes them)."""
    imap = client._imap
    imap.send(b"DONE\r\n")
    typ, data = imap._command_complete("IDLE", client._idle_tag)
    client._checkok("idle", typ, data)


def error(client: IMAPClient) -> type[Exception]:
    """The exception a refused command raises (imaplib.IMAP4.error)."""
    error_type: type[Exception] = client._imap.error
    return error_type


# -- FETCH, one answer at a time (RFC 3501 sections 6.4.5, 7.4.2) -------------------------------


def fetch(
    client: IMAPClient, ids: Sequence[int], items: Sequence[bytes], *, uid: bool = True
) -> list[dict[bytes, Any]]:
    """``[UID] FETCH ids (items)`` and every untagged FETCH the server sent while it ran, each
    answer on its own, as :func:`fetch_answers` reads them.

    imapclient's ``fetch`` merges answers by key and keys them by sequence number when an
    answer carries no UID, so an unsolicited FETCH of another message (RFC 3501 section
    7.4.1 lets a server send one during any command) could be merged into the message of
    the same number. Here nothing is merged: the caller picks the answers it asked for.
    """
    if not ids:
        return []
    imap = client._imap
    drop_untagged(client, "FETCH")  # answers to earlier commands are not this one's
    args: list[str | bytes] = ["FETCH", join_message_ids(ids), seq_to_parenstr_upper(items)]
    if uid:
        args.insert(0, "UID")
    tag = imap._command(*args)
    typ, data = imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    _, data = imap._untagged_response(typ, data, "FETCH")
    return fetch_answers(data, normalise_times=bool(client.normalise_times))


def fetch_answers(data: list[Any], normalise_times: bool = False) -> list[dict[bytes, Any]]:
    """imaplib's untagged FETCH data, one dict per answer: item names upper-cased as the
    server wrote them (``BODY[HEADER.FIELDS ("SUBJECT")]`` stays quoted), ``b"SEQ"`` the
    message number, ``b"UID"`` an int where the answer has a UID, else absent.

    The frame must be IMAP (else imapclient's ProtocolError); inside it an item that cannot
    be converted stays as parsed: an INTERNALDATE that is not a date is None, a
    BODYSTRUCTURE imapclient cannot shape (NIL where a string belongs) the raw tuple, which
    adapters.imap.bodystructure reads too.
    """
    if not data or data == [None]:
        return []
    tokens = gen_parsed_response([_bracket_flags_quoted(record) for record in data])
    answers: list[dict[bytes, Any]] = []
    for seq in tokens:
        items = next(tokens, None)
        if not isinstance(seq, int) or not isinstance(items, tuple) or len(items) % 2:
            raise ProtocolError(f"not a FETCH answer: {seq!r} {items!r}"[:300])
        answer: dict[bytes, Any] = {b"SEQ": seq}
        for name, value in zip(items[::2], items[1::2], strict=True):
            if not isinstance(name, bytes):
                raise ProtocolError(f"not a FETCH item name: {name!r}"[:300])
            key = name.upper()
            converted = _convert(key, value, normalise_times)
            if converted is not _DROP:
                answer[key] = converted
        answers.append(answer)
    return answers


_DROP = object()

# A keyword may hold "[" (RFC 3501: "[" is no atom-special; Dovecot and Cyrus store "x[y" as
# another client sets it), but imapclient's lexer takes "[" for the start of a section, as in
# BODY[TEXT], and reads on to the next "]": one such keyword made every FETCH of its message,
# and so every list of its folder, fail. Such flags are handed to the lexer quoted.
_BRACKET_IN_FLAGS = re.compile(rb"FLAGS \([^()\[]*\[")
_QUOTED_OR_FLAGS = re.compile(rb'"(?:[^"\\]|\\.)*"|(FLAGS \()([^()]*)\)')


def _bracket_flags_quoted(record: Any) -> Any:
    """An imaplib FETCH record (a line, or a line ending in a literal's ``{n}`` and the
    literal) with every flag that holds "[" quoted; the rest as it was. Quoted strings are
    passed over whole, so a "FLAGS (" inside one (a file name) is not taken for the item."""
    text = record[0] if isinstance(record, tuple) and record else record
    if not isinstance(text, bytes) or not _BRACKET_IN_FLAGS.search(text):
        return record
    quoted = _QUOTED_OR_FLAGS.sub(_quote_flags, text)
    return (quoted, *record[1:]) if isinstance(record, tuple) else quoted


def _quote_flags(match: re.Match[bytes]) -> bytes:
    if match.group(1) is None:
        return match.group(0)  # a quoted string
    flags = [
        b'"' + flag.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"' if b"[" in flag else flag
        for flag in match.group(2).split(b" ")
    ]
    return match.group(1) + b" ".join(flags) + b")"


def _convert(key: bytes, value: Any, normalise_times: bool) -> Any:
    if key == b"UID":  # a UID that is not a number is no UID
        return value if isinstance(value, int) and value > 0 else _DROP
    if key == b"INTERNALDATE":
        try:
            return parse_to_datetime(value, normalise=normalise_times)
        except (TypeError, ValueError, IndexError, AttributeError):
            return None
    if key in (b"BODY", b"BODYSTRUCTURE") and isinstance(value, tuple) and value:
        try:
            return BodyData.create(value)
        except (TypeError, ValueError, IndexError):
            return value
    return value


# -- what went over the wire, for the log --------------------------------------------------------

_WIRE_LINES = 16
# the command word and what follows it; not LOGINDISABLED or LOGIN-REFERRALS (capabilities)
_SECRET = re.compile(r"\b(LOGIN|AUTHENTICATE)\s.*", re.IGNORECASE | re.DOTALL)


_SENT = re.compile(r"> b?['\"]\S+ (\S+)(?: (\S+))?")


# Commands after which the folder a connection has selected is still the one it selected,
# as it was (UID covers UID FETCH, STORE, COPY, MOVE and SEARCH). Any other command (SELECT,
# EXAMINE, CLOSE, UNSELECT, RENAME, DELETE, one this list does not know) forgets it.
_KEEP_SELECTION = frozenset(
    {"UID", "FETCH", "SEARCH", "STORE", "COPY", "NOOP", "IDLE", "CHECK", "STATUS", "LIST"}
    | {"LSUB"}
    | {"CAPABILITY", "APPEND", "CREATE", "ID", "NAMESPACE", "ENABLE", "EXPUNGE"}
)


class _WireLog:
    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=_WIRE_LINES)
        self.command = ""  # the name imaplib completes the command under ("UID", "FETCH")
        self.sent: list[str] = []  # the first two words of the last command line logged
        self.selected: tuple[str, int] | None = None  # path and UIDVALIDITY (remember_selection)

    def add(self, line: str) -> None:
        """Kept as read: redacted only when read back (:func:`last_lines`), which is rare,
        where this runs for every line."""
        self.lines.append(line[:500])
        if line.startswith("> "):  # what _SENT can match: a command line
            sent = _SENT.match(line)
            if sent is not None:
                self.sent = [word.upper() for word in sent.groups() if word]


_logs: WeakKeyDictionary[Any, _WireLog] = WeakKeyDictionary()


def record(client: IMAPClient) -> None:
    """Keep the last lines this connection sent and read, and the command in progress, for
    the log line of an answer that cannot be read (:func:`last_lines`, :func:`last_command`).

    imapclient turns imaplib's debug output on and routes it to its logger (``_mesg``);
    this hook sees the same lines: commands as sent, responses as read, literals by size
    only. Every command passes imaplib's ``_command_complete`` with its name.
    """
    imap = client._imap
    wire_log = _logs[client] = _WireLog()
    forward = imap._mesg
    complete = imap._command_complete

    def mesg(text: Any, secs: Any = None) -> None:
        line = text.decode("ascii", "replace") if isinstance(text, bytes) else str(text)
        if line.startswith(("> ", "< ")):
            wire_log.add(line)
        if secs is None:
            forward(text)
        else:
            forward(text, secs)

    def command_complete(name: str, tag: Any) -> Any:
        wire_log.command = str(name).upper()
        if wire_log.command not in _KEEP_SELECTION:
            wire_log.selected = None
        return complete(name, tag)

    imap._mesg = mesg
    imap._command_complete = command_complete


def remember_selection(client: IMAPClient, path: str, uidvalidity: int) -> None:
    """Note that ``path`` was just selected (read-write) with this UIDVALIDITY; any command
    that may change what is selected forgets it (:data:`_KEEP_SELECTION`)."""
    wire_log = _logs.get(client)
    if wire_log is not None:
        wire_log.selected = (path, uidvalidity)


def remembered_selection(client: IMAPClient) -> tuple[str, int] | None:
    """The folder this connection has selected and its UIDVALIDITY, as remembered; None
    when none is, or when the server has told of another UIDVALIDITY since the SELECT (an
    untagged ``OK [UIDVALIDITY n]``, RFC 3501 section 7.1)."""
    wire_log = _logs.get(client)
    if wire_log is None or wire_log.selected is None or not is_selected(client):
        return None
    validity = wire_log.selected[1]
    told = client._imap.untagged_responses.get("UIDVALIDITY", [])
    if any(not _is_number(value, validity) for value in told):
        return None
    return wire_log.selected


def _is_number(value: Any, number: int) -> bool:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return text.strip() == str(number)


def last_lines(client: IMAPClient) -> list[str]:
    """The last lines sent (``> ``) and read (``< ``), passwords redacted."""
    wire_log = _logs.get(client)
    return [redact(line) for line in wire_log.lines] if wire_log is not None else []


def last_command(client: IMAPClient) -> str:
    """The last command sent, as ``UID FETCH`` or ``SELECT``, or ""."""
    wire_log = _logs.get(client)
    if wire_log is None:
        return ""
    name, sent = wire_log.command, wire_log.sent
    if name and name in sent[:2]:  # the logged line is this command's: it has the UID prefix
        return " ".join(sent[:2]) if sent[0] == "UID" else sent[0]
    return name  # sent without imaplib's logging (imapclient's _raw_command)


def redact(text: str) -> str:
    """``LOGIN`` and ``AUTHENTICATE`` arguments (user, password, SASL data) as ``***``."""
    return _SECRET.sub(lambda match: f"{match.group(1)} ***", text)


def search(client: IMAPClient, criteria: Sequence[str], charset: str | None) -> list[int]:
    """``UID SEARCH [CHARSET c] criteria``, each :class:`~mailgate.adapters.imap.search.Text`
    sent as a literal: imapclient would send a string as an atom or a quoted string, and
    neither escapes CR or LF (the command-injection hole this closes). The literal is
    synchronizing where the server lacks LITERAL+, as RFC 3501 section 7.5 asks."""
    args: list[bytes] = []
    if charset:
        args += [b"CHARSET", charset.encode("ascii")]
    encoding = charset or "ascii"
    for item in criteria:
        if isinstance(item, Text):
            args.append(_literal(item.encode(encoding, "replace")))
        else:
            args.append(item.encode("ascii"))
    data = client._raw_command_untagged(b"SEARCH", args, response_name="SEARCH", uid=True)
    return [int(uid) for uid in parse_message_list(data)]


def list_folders(client: IMAPClient) -> list[Any]:
    """``LIST "" "*"``, read by adapters.imap.listing (imapclient's parser fails on names
    such as ``x[y``)."""
    imap = client._imap
    typ, data = imap._simple_command("LIST", '""', '"*"')
    client._checkok("list", typ, data)
    _, data = imap._untagged_response(typ, data, "LIST")
    return list(data)


def status(client: IMAPClient, folder: str, items: Sequence[bytes]) -> list[Any]:
    """``STATUS folder (items)``: the raw untagged answers, for adapters.imap.listing."""
    what = b"(" + b" ".join(items) + b")"
    data = client._command_and_check("status", client._normalise_folder(folder), what)
    return list(data)


def authenticate(client: IMAPClient, mechanism: str, first: bytes, acknowledgement: bytes) -> None:
    """SASL ``AUTHENTICATE`` (imaplib's, which imapclient wraps only with a response that it
    sends again to every challenge). ``first`` answers the server's first (empty)
    challenge; ``acknowledgement`` answers the error challenge of a refused login, whose
    content then travels with the LoginError raised (RFC 7628 section 3.2.2)."""
    challenges: list[bytes] = []

    def respond(challenge: bytes) -> bytes:
        challenges.append(challenge)
        return first if len(challenges) == 1 else acknowledgement

    try:
        client._imap.authenticate(mechanism, respond)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        words = str(exc.args[0]) if exc.args else mechanism
        if len(challenges) > 1 and challenges[1]:
            words = f"{words} ({describe_challenge(challenges[1])})"
        raise LoginError(words) from exc
    client._cached_capabilities = None  # the server may say more once logged in
