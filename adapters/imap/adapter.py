"""The IMAP implementation of :class:`adapters.base.MailAdapter`."""

from __future__ import annotations

import contextlib
import logging

from adapters._oplog import logged_operation
from adapters.endpoint import MailboxEndpoint
from adapters.imap.connect import open_imap

log = logging.getLogger("mailgate.imap")


class ImapAdapter:
    def __init__(self, endpoint: MailboxEndpoint) -> None:
        self.endpoint = endpoint

    def verify(self) -> None:
        with logged_operation(log, self.endpoint.account_id, "imap.verify"):
            client = open_imap(self.endpoint)
            with contextlib.suppress(Exception):  # login succeeded, which is what was asked
                client.logout()
