"""Which network addresses Mailgate may connect to on a user's behalf, and the one name
lookup a connection then uses.

A host name is resolved once; the addresses are checked and the connection goes to one of
exactly those addresses, never to a second lookup of the name (which could answer otherwise:
DNS rebinding). TLS still verifies the certificate against the name (see ``pinned_context``).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo's shape; tests hand a resolver of their own for names no DNS knows
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

_NOT_PUBLIC = (  # most specific first: Python counts loopback and link-local as private too
    ("is_loopback", "a loopback address"),
    ("is_unspecified", "the unspecified address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private-network address"),
)


class NotPublic(ValueError):
    """The name resolves to an address on a private, loopback, link-local or otherwise
    non-public network, and such targets are not allowed here."""

    def __init__(self, host: str, address: Address, reason: str) -> None:
        super().__init__(f"{host!r} resolves to {address}, {reason}")
        self.host, self.address, self.reason = host, address, reason


def not_public(address: Address) -> str | None:
    """Why ``address`` is no public internet address (None: it is one)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:  # fec0::/10, deprecated but still routed by some stacks
            return "a site-local address"
        # an IPv4 address inside the IPv6 one (mapped, 6to4 2002::/16, Teredo's client) is
        # where the packets end up: judge that one
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            reason = not_public(embedded)
            return f"{reason} (inside {address})" if reason else None
    for attribute, reason in _NOT_PUBLIC:
        if getattr(address, attribute):
            return reason
    if not address.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT)
        return "not a public address"
    return None


def resolve(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = socket.getaddrinfo
) -> list[str]:
    """The addresses to connect to for ``host``, in the resolver's order, without repeats.

    Raises ``socket.gaierror`` (or ``UnicodeError``) when the name does not resolve, and
    ``NotPublic`` when any address is not public and ``allow_private`` is off: one bad
    address refuses the name, since which one a connection would reach is not ours to pick.
    """
    found: list[str] = []
    for info in resolver(host, port, type=socket.SOCK_STREAM):
        text = str(info[4][0])
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not allow_private and (reason := not_public(address)) is not None:
            raise NotPublic(host, address, reason)
        if text not in found:
            found.append(text)
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return found


class _NamedContext(ssl.SSLContext):
    """A TLS context that gives the handshake (SNI, certificate check) one fixed server name,
    whatever address the socket was opened to."""

    server_name: str

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self.server_name,
            session=session,
        )


def pinned_context(server_name: str, *, verify: bool = True) -> ssl.SSLContext:
    """The system trust store (honours SSL_CERT_FILE), as ``ssl.create_default_context``,
    for a connection opened to an address: the certificate is checked against
    ``server_name`` and SNI names it. ``verify`` off: no certificate check at all.

    One context per server name and trust store, shared by every connection to it: each
    holds the whole trust store (about a megabyte), and a thousand watched accounts on one
    provider need it once, not a thousand times."""
    return _pinned(server_name, verify, _trust_store())


def _trust_store() -> tuple[str | None, str | None, int | None]:
    """What the system trust store is now: a context made for another is not reused."""
    cert_file = os.environ.get("SSL_CERT_FILE")
    try:
        changed = os.stat(cert_file).st_mtime_ns if cert_file else None
    except OSError:
        changed = None
    return cert_file, os.environ.get("SSL_CERT_DIR"), changed


@functools.lru_cache(maxsize=256)
def _pinned(
    server_name: str, verify: bool, _store: tuple[str | None, str | None, int | None]
) -> ssl.SSLContext:
    context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.server_name = server_name
    if verify:
        context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
