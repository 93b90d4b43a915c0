"""Pick the adapter for a protocol. The only place that names the protocols."""

from __future__ import annotations

from adapters.base import AliasStore, MailAdapter
from adapters.endpoint import MailboxEndpoint
from adapters.imap import ImapAdapter
from adapters.pop3 import Pop3Adapter


def adapter_for(protocol: str, endpoint: MailboxEndpoint, aliases: AliasStore) -> MailAdapter:
    if protocol == "imap":
        return ImapAdapter(endpoint, aliases)
    if protocol == "pop3":
        return Pop3Adapter(endpoint)
    raise ValueError(f"unknown protocol {protocol!r}")
