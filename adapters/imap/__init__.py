"""IMAP adapter (RFC 3501 / 9051) on imapclient."""

from mailgate.adapters.imap.adapter import ImapAdapter

__all__ = ["ImapAdapter"]
