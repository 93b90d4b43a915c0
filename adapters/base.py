"""The one interface every protocol adapter implements. Routers only ever see this."""

from __future__ import annotations

from typing import Protocol


class MailAdapter(Protocol):
    """A mailbox reached through one protocol. Methods block: call them from a worker thread."""

    def verify(self) -> None:
        """Log in and out once; raise an :mod:`adapters.errors` error if that fails."""
        ...
