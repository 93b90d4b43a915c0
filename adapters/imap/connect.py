"""Open a logged-in IMAP connection with the endpoint's security, or raise an adapter error;
close one whatever the server does; and the error for an answer Mailgate cannot read."""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import socket
import ssl

from imapclient import IMAPClient
from imapclient.exceptions import LoginError, ProtocolError
from imapclient.util import to_unicode

from mailgate.adapters import sasl
from mailgate.adapters._net import connect_checked, network_errors, set_nodelay
from mailgate.adapters.imap import wire
from mailgate.domain.addresses import Resolver
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import (
    MailboxAuthFailed,
    MailboxProtocolError,
    MailboxTLSError,
    MailboxUnreachable,
)

log = logging.getLogger("mailgate.imap")

# What an answer Mailgate cannot read raises: imapclient's parse failures (ProtocolError) and
# imaplib's own (imaplib.IMAP4.error both), and what a malformed answer makes the code reading
# it raise. imaplib.IMAP4.abort (a dropped connection, a BYE) is an IMAP4.error too: callers
# catch adapters.imap.pool.BROKEN first, and ask garbled() which aborts are of this kind.
MALFORMED: tuple[type[Exception], ...] = (
    imaplib.IMAP4.error,
    KeyError,
    ValueError,
    IndexError,
    TypeError,
)
# What code that handles a server's refusal of a command (a tagged NO or BAD: an
# imaplib.IMAP4.error) must let through: a dropped connection, and an answer imapclient could
# not parse (its ProtocolError is an IMAP4.error too). Catch these first and re-raise.
NOT_A_REFUSAL: tuple[type[Exception], ...] = (imaplib.IMAP4.abort, ProtocolError)
_GARBLED = re.compile(r"unexpected (tagged )?response")


def garbled(exc: BaseException) -> bool:
    """Whether imaplib (or imapclient) gave up on the connection because a line was not IMAP
    at all (neither ``*``, ``+`` nor a tag we sent, RFC 3501 section 2.2.2): the server
    answered wrongly, the connection did not drop."""
    return isinstance(exc, imaplib.IMAP4.abort) and _GARBLED.search(str(exc)) is not None


def server_words(exc: BaseException) -> str:
    """The server's text from an imaplib/imapclient error, without Python's bytes repr.
    imaplib raises ``error(None)`` for a greeting it takes for a continuation ("+OK" from a
    POP3 server on the IMAP port): that has no words."""
    words = exc.args[0] if exc.args else str(exc)
    text = "" if words is None else to_unicode(words)
    if text.startswith(("b'", 'b"')) and text.endswith(("'", '"')):
        text = text[2:-1]
    return text.strip() or "no words from the server"


def protocol_error(
    client: IMAPClient | None, where: str, exc: BaseException, account_id: str = ""
) -> MailboxProtocolError:
    """The error for an answer Mailgate cannot read or use (502 ``mailbox-protocol-error``):
    its detail names the command and the server, the log line has the last lines of the
    connection and the exception, LOGIN and AUTHENTICATE arguments redacted."""
    command = (wire.last_command(client) if client is not None else "") or "the greeting"
    reason = wire.redact(f"{type(exc).__name__}: {server_words(exc)}")
    log.warning(
        "imap answer not understood",
        extra={
            "account_id": account_id,
            "server": where,
            "command": command,
            "error": reason[:1000],
            "wire": wire.last_lines(client) if client is not None else [],
        },
        # a Python error from reading an answer may be our bug as well: keep its traceback
        exc_info=None if isinstance(exc, imaplib.IMAP4.error) else exc,
    )
    short = reason if len(reason) <= 200 else reason[:199] + "…"
    return MailboxProtocolError(
        f"The mail server {where} answered {command} with something Mailgate cannot use ({short})."
    )


def open_imap(endpoint: MailboxEndpoint, resolver: Resolver = socket.getaddrinfo) -> IMAPClient:
    """A logged-in connection to one of the addresses the host resolved to once (``resolver``:
    tests name hosts no DNS knows), checked by the endpoint's address policy."""
    where = f"{endpoint.host}:{endpoint.port}"

    def greet(address: str) -> IMAPClient:
        return IMAPClient(
            address,
            port=endpoint.port,
            ssl=endpoint.security == "tls",
            ssl_context=endpoint.ssl_context(),
            timeout=endpoint.connect_timeout,
        )

    with network_errors(endpoint.host, endpoint.port):
        try:
            client = connect_checked(endpoint, greet, resolver)
        except imaplib.IMAP4.abort as exc:
            if garbled(exc):  # a greeting that is not IMAP: another protocol on that port
                raise protocol_error(None, where, exc, endpoint.account_id) from exc
            raise MailboxUnreachable(f"{where} closed the connection: {exc}") from exc
        except ssl.SSLError:  # (a certificate error is a ValueError too): network_errors
            raise
        except MALFORMED as exc:
            words = server_words(exc)
            if words.upper().startswith("* BYE"):  # RFC 3501 section 7.1.5: it will not serve us
                raise MailboxUnreachable(f"{where} refused the connection: {words}") from exc
            raise protocol_error(None, where, exc, endpoint.account_id) from exc
        wire.record(client)
        # connect_timeout covers reaching the server and its greeting; commands from here on,
        # the login included, may take read_timeout (Courier answers a wrong password after 5 s)
        client.socket().settimeout(endpoint.read_timeout)
        # imapclient would turn dates into naive *local* time; keep their zone instead
        client.normalise_times = False
        try:
            set_nodelay(client.socket())
            if endpoint.security == "starttls":
                _starttls(client, endpoint)
            if endpoint.token is not None:
                _oauth2_login(client, endpoint)
            elif f"{endpoint.username}{endpoint.password}".isascii():
                client.login(endpoint.username, endpoint.password)
            else:  # LOGIN's strings are ASCII; SASL PLAIN carries UTF-8 (RFC 4616)
                client.plain_login(endpoint.username, endpoint.password)
        except LoginError as exc:
            _close_quietly(client)
            raise MailboxAuthFailed(server_words(exc)) from exc
        except imaplib.IMAP4.abort as exc:
            _close_quietly(client)
            raise MailboxUnreachable(f"{where} closed the connection: {exc}") from exc
        except ssl.SSLError:  # STARTTLS: network_errors says what failed
            _close_quietly(client)
            raise
        except MALFORMED as exc:
            _close_quietly(client)
            raise protocol_error(client, where, exc, endpoint.account_id) from exc
        except BaseException:
            _close_quietly(client)
            raise
    return client


def _oauth2_login(client: IMAPClient, endpoint: MailboxEndpoint) -> None:
    """AUTHENTICATE OAUTHBEARER (or XOAUTH2) with the account's access token."""
    offered = {
        capability.decode("ascii", "replace")[5:]
        for capability in client.capabilities()
        if capability.upper().startswith(b"AUTH=")
    }

    def send(mechanism: str, first: bytes, acknowledgement: bytes) -> None:
        wire.authenticate(client, mechanism, first, acknowledgement)

    sasl.log_in(endpoint, offered, send, LoginError)


def _starttls(client: IMAPClient, endpoint: MailboxEndpoint) -> None:
    if not client.has_capability("STARTTLS"):
        raise MailboxTLSError(f"{endpoint.host}:{endpoint.port} does not offer STARTTLS")
    client.starttls(endpoint.ssl_context())


def logout_quietly(client: IMAPClient) -> None:
    """LOGOUT and close, never raising: a server may close the connection after LOGOUT
    without the tagged OK (RFC 3501 section 6.1.3 has it send BYE, then OK), or be gone."""
    try:
        client.logout()
    except Exception:  # the connection is being abandoned anyway
        _close_quietly(client)


def _close_quietly(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # the connection is being abandoned anyway
        client.shutdown()
