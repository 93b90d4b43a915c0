"""adapters/imap/wire.py uses imapclient internals: they are checked here, for the installed
imapclient, which must be in the range pyproject.toml pins (the live IMAP tests exercise
them against real servers)."""

from __future__ import annotations

import imaplib
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

from imapclient import IMAPClient
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_installed_imapclient_is_in_the_pinned_range() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    [pin] = [Requirement(d) for d in dependencies if d.startswith("imapclient")]
    assert pin.specifier, "imapclient must be pinned to a tested range"
    assert version("imapclient") in pin.specifier


def test_the_internals_wire_uses_are_there() -> None:
    raw = inspect.signature(IMAPClient._raw_command)
    assert list(raw.parameters)[:4] == ["self", "command", "args", "uid"]
    untagged = inspect.signature(IMAPClient._raw_command_untagged)
    assert {"command", "args", "response_name", "uid"} <= set(untagged.parameters)
    assert callable(IMAPClient._normalise_folder)
    assert callable(IMAPClient._command_and_check) and callable(IMAPClient._checkok)
    assert callable(imaplib.IMAP4._untagged_response)
    from imapclient.imapclient import _literal

    assert issubclass(_literal, bytes)  # what wire.search sends as a literal
    assert callable(imaplib.IMAP4._simple_command)
    assert issubclass(imaplib.IMAP4.abort, imaplib.IMAP4.error)
    source = inspect.getsource(IMAPClient.__init__)
    assert "self._imap" in source or "_imap" in inspect.getsource(IMAPClient)
    # wire.authenticate: imaplib's AUTHENTICATE, then imapclient's capability cache reset
    assert list(inspect.signature(imaplib.IMAP4.authenticate).parameters) == [
        "self",
        "mechanism",
        "authobject",
    ]
    assert "_cached_capabilities" in inspect.getsource(IMAPClient.capabilities)
