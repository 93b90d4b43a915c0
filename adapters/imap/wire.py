"""What imapclient does not offer, done through its internals, in this one module.

imapclient has no public way to read the session state, drop stale untagged responses, send
a command it does not know (NOTIFY, RFC 5465; ESEARCH's SEARCH RETURN, RFC 4731) or read the
untagged codes of UID COPY/MOVE (COPYUID, RFC 4315). Everything here leans on
``IMAPClient._imap`` (its imaplib.IMAP4), ``_raw_command*`` and ``_normalise_folder``; the
imapclient range in pyproject.toml is the one tests/unit/test_imap_wire.py checks them on.
"""

from __future__ import annotations

from typing import Any

from imapclient import IMAPClient


def is_selected(client: IMAPClient) -> bool:
    """Whether a folder is selected (imaplib's state; imapclient does not expose it)."""
    return bool(client._imap.state == "SELECTED")


def drop_untagged(client: IMAPClient, *names: str) -> None:
    """Forget untagged responses of these names the server sent unasked (e.g. under NOTIFY),
    so the next command's answer is only its own."""
    for name in names:
        client._imap.untagged_responses.pop(name, None)


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


def error(client: IMAPClient) -> type[Exception]:
    """The exception a refused command raises (imaplib.IMAP4.error)."""
    error_type: type[Exception] = client._imap.error
    return error_type
