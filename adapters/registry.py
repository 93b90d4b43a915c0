"""Pick the adapter for a protocol. The only place that names the protocols."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from mailgate.adapters.base import AliasStore, MailAdapter
from mailgate.adapters.imap import ImapAdapter
from mailgate.adapters.pop3 import Pop3Adapter
from mailgate.adapters.pop3.sync import Pop3Policy
from mailgate.domain.endpoint import MailboxEndpoint


def adapter_for(
    protocol: str,
    endpoint: MailboxEndpoint,
    *,
    aliases: AliasStore,
    engine: Engine,
    pop3_policy: Pop3Policy,
    pop3_sync_interval: float,
    watched: set[str] | None = None,
) -> MailAdapter:
    """``watched``: the IMAP folder paths whose outside changes are watched (None: all)."""
    if protocol == "imap":
        return ImapAdapter(endpoint, aliases, engine, watched=watched)
    if protocol == "pop3":
        return Pop3Adapter(endpoint, engine, pop3_policy, pop3_sync_interval)
    raise ValueError(f"unknown protocol {protocol!r}")
