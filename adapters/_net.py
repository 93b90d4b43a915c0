"""Socket-level failures mapped to adapter errors, the same for every protocol."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from mailgate.domain.errors import MailboxTimeout, MailboxTLSError, MailboxUnreachable


def set_nodelay(sock: socket.socket | None) -> None:
    """Nagle plus delayed ACKs can stall each command ~40 ms; turn Nagle off."""
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextmanager
def network_errors(host: str, port: int) -> Iterator[None]:
    """Translate socket, DNS and TLS exceptions into adapter errors with a plain message."""
    where = f"{host}:{port}"
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise MailboxTLSError(
            f"TLS certificate of {where} not trusted: {exc.verify_message}"
        ) from exc
    except ssl.SSLError as exc:
        raise MailboxTLSError(f"TLS handshake with {where} failed: {exc.reason}") from exc
    except socket.gaierror as exc:
        raise MailboxUnreachable(f"host {host} does not resolve: {exc.strerror}") from exc
    except TimeoutError as exc:
        raise MailboxTimeout(f"{where} did not answer in time") from exc
    except ConnectionError as exc:
        raise MailboxUnreachable(f"cannot connect to {where}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise MailboxUnreachable(f"cannot connect to {where}: {exc.strerror or exc}") from exc
