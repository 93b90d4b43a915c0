"""Which adapter serves a protocol, and what each protocol can do. The only place that tells
the protocols apart: every other layer asks here instead of comparing protocol names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from mailgate.adapters.base import AliasStore, MailAdapter
from mailgate.adapters.imap import ImapAdapter
from mailgate.adapters.pop3 import Pop3Adapter
from mailgate.domain.accounts import Pop3Policy
from mailgate.domain.changes import ChangeSink
from mailgate.domain.endpoint import MailboxEndpoint


@dataclass(frozen=True)
class Traits:
    default_ports: Mapping[str, int]
    """The usual port for each security mode (``tls``, ``starttls``, ``none``)."""
    server_watch: bool
    """The server can tell of changes: ``open_watch()`` gives a connection to wait on, and an
    account can name the folders to watch (``watched_folders``)."""
    keeps_state: bool
    """Mailgate's store is the mailbox's state: the account takes the POP3 policy, and the
    service brings new mail in with ``refresh()`` on a timer."""


TRAITS: dict[str, Traits] = {
    "imap": Traits(
        {"tls": 993, "starttls": 143, "none": 143}, server_watch=True, keeps_state=False
    ),
    "pop3": Traits(
        {"tls": 995, "starttls": 110, "none": 110}, server_watch=False, keeps_state=True
    ),
}


def traits(protocol: str) -> Traits:
    try:
        return TRAITS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}") from None


def default_port(protocol: str, security: str) -> int:
    return traits(protocol).default_ports[security]


def protocols_that(
    *, server_watch: bool | None = None, keeps_state: bool | None = None
) -> list[str]:
    """The protocols with these traits (None: either)."""
    return [
        name
        for name, t in TRAITS.items()
        if server_watch in (None, t.server_watch) and keeps_state in (None, t.keeps_state)
    ]


def adapter_for(
    protocol: str,
    endpoint: MailboxEndpoint,
    *,
    aliases: AliasStore,
    engine: Engine,
    changes: ChangeSink,
    pop3_policy: Pop3Policy,
    sync_interval: float,
    watched: set[str] | None = None,
) -> MailAdapter:
    """``watched``: the folder paths whose outside changes are watched (None: all)."""
    if protocol == "imap":
        return ImapAdapter(endpoint, aliases, engine, changes, watched=watched)
    if protocol == "pop3":
        return Pop3Adapter(endpoint, engine, changes, pop3_policy, sync_interval)
    raise ValueError(f"unknown protocol {protocol!r}")
