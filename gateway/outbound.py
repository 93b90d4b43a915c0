"""Calls the gateway makes to URLs a tenant gave (webhooks, OAuth2 providers): the URL is
checked and its name looked up once, and the request goes to exactly the addresses checked.

``check_url`` refuses what would make the gateway call into its own network (unless the
deployment allows it) and returns the addresses; ``PinnedHttp`` sends to one of them (tried
in order, as a connection to a name tries each address), while the Host header, TLS SNI and
the certificate check use the URL's own name. Kept-alive connections are kept per host name,
so two names that share an address never share a TLS session verified for the other. No
DNS-rebinding window between the check and the connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from socket import getaddrinfo
from urllib.parse import urlsplit

import httpx

from mailgate.domain.addresses import NotPublic, Resolver, resolve
from mailgate.domain.errors import InvalidRequest


@dataclass(frozen=True)
class HttpTarget:
    """Where a URL points: its host name and port, and the addresses the one lookup found
    (empty when the URL was only checked for shape)."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...] = ()


def check_url(
    url: str,
    allow_private: bool,
    *,
    what: str,
    setting: str,
    resolve_now: bool = False,
    resolver: Resolver = getaddrinfo,
) -> HttpTarget:
    """The URL's target, or ``InvalidRequest`` naming ``what`` (the URL's role) and the
    ``setting`` that would allow a private target. With ``allow_private`` addresses are not
    judged, and unless ``resolve_now`` only the URL's shape is checked."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"the {what} url must be http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(f"the {what} url must not carry credentials (user:password@)")
    host = parts.hostname
    if not host:
        raise InvalidRequest(f"the {what} url must name a host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise InvalidRequest(f"the {what} url has an invalid port") from None
    if allow_private and not resolve_now:
        return HttpTarget(url, host, port)
    try:
        addresses = resolve(host, port, allow_private=allow_private, resolver=resolver)
    except NotPublic as exc:
        raise InvalidRequest(
            f"the {what} host {exc}; such targets are refused unless {setting}"
        ) from None
    except (OSError, UnicodeError, ValueError):
        raise InvalidRequest(f"the {what} host {host!r} does not resolve") from None
    return HttpTarget(url, host, port, tuple(addresses))


class PinnedHttp:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._clients: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()

    def _client(self, host: str) -> httpx.Client:
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = httpx.Client(timeout=self.timeout, follow_redirects=False)
                self._clients[host] = client
            return client

    @contextmanager
    def stream(
        self, method: str, target: HttpTarget, content: bytes | None, headers: dict[str, str]
    ) -> Iterator[httpx.Response]:
        """The answer, streamed; raises httpx errors as ``httpx.Client.stream`` does."""
        url = httpx.URL(target.url)
        name = url.raw_host.decode("ascii")
        client = self._client(name)
        extensions = {"sni_hostname": name} if url.scheme == "https" else {}
        response: httpx.Response | None = None
        for index, address in enumerate(target.addresses):
            request = client.build_request(
                method,
                url.copy_with(host=address),
                content=content,
                headers={**headers, "host": url.netloc.decode("ascii")},
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
                break
            except httpx.ConnectError:  # refused or unreachable: the next address may answer
                if index == len(target.addresses) - 1:
                    raise
        if response is None:
            raise httpx.ConnectError(f"{name} resolved to no address")
        try:
            yield response
        finally:
            response.close()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
