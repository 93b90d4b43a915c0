"""The POP3 implementation of :class:`adapters.base.MailAdapter`."""

from __future__ import annotations

import contextlib
import logging

from adapters._oplog import logged_operation
from adapters.endpoint import MailboxEndpoint
from adapters.pop3.connect import open_pop3

log = logging.getLogger("mailgate.pop3")


class Pop3Adapter:
    def __init__(self, endpoint: MailboxEndpoint) -> None:
        self.endpoint = endpoint

    def verify(self) -> None:
        with logged_operation(log, self.endpoint.account_id, "pop3.verify"):
            client = open_pop3(self.endpoint)
            with contextlib.suppress(Exception):  # login succeeded, which is what was asked
                client.quit()
