"""Open an authenticated POP3 connection with the endpoint's security, or raise."""

from __future__ import annotations

import contextlib
import poplib

from mailgate.adapters._net import network_errors, set_nodelay
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import MailboxAuthFailed, MailboxTLSError

# poplib refuses lines over 2048 bytes ("line too long"); real mail has longer ones
# (unwrapped HTML, long headers), and RFC 1939 sets no limit on message lines.
poplib._MAXLINE = 1024 * 1024  # type: ignore[attr-defined]  # poplib's line limit; not in typeshed


def server_words(exc: BaseException) -> str:
    raw = exc.args[0] if exc.args else b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.removeprefix("-ERR").strip() or type(exc).__name__


def open_pop3(endpoint: MailboxEndpoint) -> poplib.POP3:
    with network_errors(endpoint.host, endpoint.port):
        client: poplib.POP3
        if endpoint.security == "tls":
            client = poplib.POP3_SSL(
                endpoint.host,
                endpoint.port,
                timeout=endpoint.connect_timeout,
                context=endpoint.ssl_context(),
            )
        else:
            client = poplib.POP3(endpoint.host, endpoint.port, timeout=endpoint.connect_timeout)
        try:
            set_nodelay(client.sock)
            if endpoint.security == "starttls":
                _stls(client, endpoint)
            _login(client, endpoint)
        except BaseException:
            _close_quietly(client)
            raise
        client.sock.settimeout(endpoint.read_timeout)
    return client


def _login(client: poplib.POP3, endpoint: MailboxEndpoint) -> None:
    """USER/PASS (RFC 1939 section 7): an -ERR to either is the server refusing the login."""
    try:
        client.user(endpoint.username)
        client.pass_(endpoint.password)
    except poplib.error_proto as exc:
        raise MailboxAuthFailed(server_words(exc)) from exc


def _stls(client: poplib.POP3, endpoint: MailboxEndpoint) -> None:
    try:
        capabilities = client.capa()
    except poplib.error_proto:
        capabilities = {}
    if "STLS" not in capabilities:
        raise MailboxTLSError(f"{endpoint.host}:{endpoint.port} does not offer STLS")
    client.stls(endpoint.ssl_context())


def _close_quietly(client: poplib.POP3) -> None:
    with contextlib.suppress(Exception):  # the connection is being abandoned anyway
        client.close()
