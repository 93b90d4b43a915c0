"""Open a logged-in IMAP connection with the endpoint's security, or raise an adapter error."""

from __future__ import annotations

import contextlib
import imaplib

from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from imapclient.util import to_unicode

from mailgate.adapters._net import network_errors, set_nodelay
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import MailboxAuthFailed, MailboxProtocolError, MailboxTLSError


def server_words(exc: BaseException) -> str:
    """The server's text from an imaplib/imapclient error, without Python's bytes repr."""
    text = to_unicode(exc.args[0]) if exc.args else str(exc)
    if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')):
        text = text[2:-1]
    return text.strip() or type(exc).__name__


def open_imap(endpoint: MailboxEndpoint) -> IMAPClient:
    with network_errors(endpoint.host, endpoint.port):
        client = IMAPClient(
            endpoint.host,
            port=endpoint.port,
            ssl=endpoint.security == "tls",
            ssl_context=endpoint.ssl_context(),
            timeout=endpoint.connect_timeout,
        )
        # imapclient would turn dates into naive *local* time; keep their zone instead
        client.normalise_times = False
        try:
            set_nodelay(client.socket())
            if endpoint.security == "starttls":
                _starttls(client, endpoint)
            client.login(endpoint.username, endpoint.password)
        except LoginError as exc:
            _close_quietly(client)
            raise MailboxAuthFailed(server_words(exc)) from exc
        except imaplib.IMAP4.error as exc:
            _close_quietly(client)
            raise MailboxProtocolError(server_words(exc)) from exc
        except BaseException:
            _close_quietly(client)
            raise
        client.socket().settimeout(endpoint.read_timeout)
    return client


def _starttls(client: IMAPClient, endpoint: MailboxEndpoint) -> None:
    if not client.has_capability("STARTTLS"):
        raise MailboxTLSError(f"{endpoint.host}:{endpoint.port} does not offer STARTTLS")
    client.starttls(endpoint.ssl_context())


def _close_quietly(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # the connection is being abandoned anyway
        client.shutdown()
