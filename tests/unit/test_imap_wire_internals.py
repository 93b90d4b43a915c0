"""The imapclient/imaplib internals adapters.imap.wire uses for FETCH answers one at a time
and for the wire log, checked on the installed versions (tests/unit/test_imap_wire.py checks
the others; the live tests in tests/test_imap_quirks.py exercise them on real servers)."""

from __future__ import annotations

import imaplib
import inspect

from imapclient import IMAPClient
from imapclient import imapclient as imapclient_module
from imapclient.datetime_util import parse_to_datetime
from imapclient.exceptions import ProtocolError
from imapclient.response_parser import gen_parsed_response
from imapclient.response_types import BodyData


def test_fetch_internals_are_there() -> None:
    assert list(inspect.signature(imaplib.IMAP4._command_complete).parameters) == [
        "self",
        "name",
        "tag",
    ]
    assert list(inspect.signature(imaplib.IMAP4._untagged_response).parameters) == [
        "self",
        "typ",
        "dat",
        "name",
    ]
    assert callable(imaplib.IMAP4._command)
    assert list(inspect.signature(IMAPClient._checkok).parameters)[:4] == [
        "self",
        "command",
        "typ",
        "data",
    ]
    assert imapclient_module.join_message_ids([1, 2]) == b"1,2"
    assert imapclient_module.seq_to_parenstr_upper([b"uid", b"flags"]) == "(UID FLAGS)"
    assert issubclass(ProtocolError, imaplib.IMAP4.error)
    assert isinstance(BodyData.create((b"text", b"plain")), BodyData)
    assert parse_to_datetime(b"01-May-2024 12:00:00 +0000", normalise=False).year == 2024
    assert list(gen_parsed_response([b"1 (UID 5)"])) == [1, (b"UID", 5)]


def test_the_debug_hook_wire_records_through_is_set_by_imapclient() -> None:
    """imapclient turns imaplib's debug output on (level 5: every line sent and read goes to
    ``_mesg``) and points ``_mesg`` at its logger; wire.record wraps that hook."""
    source = inspect.getsource(IMAPClient.__init__)
    assert "self._imap.debug = 5" in source
    assert "self._imap._mesg = " in source
    assert "self._mesg('> %r' % data)" in inspect.getsource(imaplib.IMAP4._command)
    assert "self._mesg('< %r' % line)" in inspect.getsource(imaplib.IMAP4._get_line)
