"""POST to a webhook target at the addresses that were checked, not at a second lookup.

The request goes to an address of ``WebhookTarget.addresses`` (tried in order, as a
connection to a name tries each address), while the Host header, TLS SNI and the
certificate check use the URL's own name. Kept-alive connections are kept per host name, so
two names that share an address never share a TLS session verified for the other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from mailgate.gateway.webhooks import WebhookTarget


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
    def post(
        self, target: WebhookTarget, content: bytes, headers: dict[str, str]
    ) -> Iterator[httpx.Response]:
        """The answer, streamed; raises httpx errors as ``httpx.Client.stream`` does."""
        url = httpx.URL(target.url)
        name = url.raw_host.decode("ascii")
        client = self._client(name)
        extensions = {"sni_hostname": name} if url.scheme == "https" else {}
        response: httpx.Response | None = None
        for index, address in enumerate(target.addresses):
            request = client.build_request(
                "POST",
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
