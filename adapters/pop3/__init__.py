"""POP3 adapter (RFC 1939) on poplib; the store emulates folders and flags."""

from mailgate.adapters.pop3.adapter import Pop3Adapter

__all__ = ["Pop3Adapter"]
