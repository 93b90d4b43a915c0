"""Open an authenticated POP3 connection with the endpoint's security, or raise."""

from __future__ import annotations

import base64
import contextlib
import poplib
import socket

from mailgate.adapters import sasl
from mailgate.adapters._net import connect_checked, network_errors, set_nodelay
from mailgate.adapters.pop3.respcodes import busy_error, response_code, server_words
from mailgate.domain.addresses import Resolver
from mailgate.domain.endpoint import MailboxEndpoint
from mailgate.domain.errors import (
    MailboxAuthFailed,
    MailboxError,
    MailboxProtocolError,
    MailboxTLSError,
)

# poplib refuses lines over 2048 bytes ("line too long"); real mail has longer ones
# (unwrapped HTML, long headers), and RFC 1939 sets no limit on message lines.
poplib._MAXLINE = 1024 * 1024  # type: ignore[attr-defined]  # poplib's line limit; not in typeshed


def open_pop3(endpoint: MailboxEndpoint, resolver: Resolver = socket.getaddrinfo) -> poplib.POP3:
    """Connect (``connect_timeout`` covers reaching the server and its greeting), then log in
    with ``read_timeout``: a server may rightly take its time to answer PASS (Courier delays
    a wrong password 5 s; Dovecot with ``pop3_lock_session`` waits up to 10 s for the lock).
    The connection goes to one of the addresses the host resolved to once (``resolver``: tests
    name hosts no DNS knows), checked by the endpoint's address policy."""
    with network_errors(endpoint.host, endpoint.port):
        client = connect_checked(endpoint, lambda address: _connect(endpoint, address), resolver)
        try:
            client.sock.settimeout(endpoint.read_timeout)
            set_nodelay(client.sock)
            if endpoint.security == "starttls":
                _stls(client, endpoint)
            _login(client, endpoint)
        except BaseException:
            _close_quietly(client)
            raise
    return client


def _connect(endpoint: MailboxEndpoint, address: str) -> poplib.POP3:
    """Connect and read the greeting; one that is not ``+OK`` is no POP3 server (RFC 1939
    section 4): a port that speaks something else is a protocol error, never a crash."""
    try:
        if endpoint.security == "tls":
            return poplib.POP3_SSL(
                address,
                endpoint.port,
                timeout=endpoint.connect_timeout,
                context=endpoint.ssl_context(),
            )
        return poplib.POP3(address, endpoint.port, timeout=endpoint.connect_timeout)
    except poplib.error_proto as exc:
        raise MailboxProtocolError(
            f"{endpoint.host}:{endpoint.port} does not greet as a POP3 server: "
            f"{server_words(exc)[:200]}"
        ) from exc


def _login(client: poplib.POP3, endpoint: MailboxEndpoint) -> None:
    """USER/PASS (RFC 1939 section 7). An -ERR to either is the server refusing the login,
    unless its response code says otherwise (RFC 2449, RFC 3206; see respcodes)."""
    try:
        if endpoint.token is not None:
            _oauth2_login(client, endpoint)
        else:
            client.user(endpoint.username)
            client.pass_(endpoint.password)
    except poplib.error_proto as exc:
        if (busy := busy_error(exc)) is not None:
            raise busy from exc
        if response_code(exc) == "SYS/PERM":
            words = server_words(exc)
            raise MailboxError(f"the POP3 server has a lasting problem: {words}") from exc
        raise MailboxAuthFailed(server_words(exc)) from exc


def _oauth2_login(client: poplib.POP3, endpoint: MailboxEndpoint) -> None:
    """AUTH OAUTHBEARER (or XOAUTH2) with the account's access token (RFC 5034, with an
    initial response)."""
    try:
        offered = set(client.capa().get("SASL", []))
    except poplib.error_proto:
        offered = set()

    def send(mechanism: str, first: bytes, acknowledgement: bytes) -> None:
        _authenticate(client, mechanism, first, acknowledgement)

    sasl.log_in(endpoint, offered, send, poplib.error_proto)


def _authenticate(client: poplib.POP3, mechanism: str, first: bytes, acknowledge: bytes) -> None:
    """``AUTH mechanism initial-response``; poplib has no AUTH, and its answer reader takes a
    ``+ challenge`` (the refusal's error challenge, RFC 7628 section 3.2.2) for ``+OK``.
    A refusal raises poplib.error_proto with the server's words and the challenge."""
    client._putcmd(f"AUTH {mechanism} {base64.b64encode(first).decode('ascii')}")  # type: ignore[attr-defined]  # poplib's command writer; not in typeshed
    line, _ = client._getline()  # type: ignore[attr-defined]  # poplib's line reader
    challenge = b""
    if line == b"+" or line.startswith(b"+ "):
        challenge = base64.b64decode(line[2:] or b"", validate=False)
        client._putcmd(base64.b64encode(acknowledge).decode("ascii"))  # type: ignore[attr-defined]
        line, _ = client._getline()  # type: ignore[attr-defined]
    if line.startswith(b"+OK"):
        return
    if challenge:
        line += f" ({sasl.describe_challenge(challenge)})".encode()
    raise poplib.error_proto(line)


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
