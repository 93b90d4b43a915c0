"""One tenant flooding a stuck mailbox cannot starve another (issue 11: 44 requests stuck on
one account made another tenant's `GET /v1/accounts` wait 27 s, every worker thread held).
A real server (uvicorn) and real threads of clients; the stuck mailbox is a Dovecot behind
the fault-injection proxy, stalled. No timing is asserted: the other tenant's request must
come back while the flood is still stuck."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer
from tests.harness.proxy import FaultProxy
from tests.harness.serve import served as serving
from tests.helpers import account_body

FLOOD = 60  # more than the worker pool's 40 threads


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[str, Gateway]]:
    gw = Gateway.from_settings(make_settings(tmp_path, sqlite_url, connect_timeout=5.0))
    gw.migrate()
    with serving(create_app(gw)) as base:
        yield base, gw
    gw.close()


def test_a_flood_on_a_stuck_mailbox_leaves_workers_for_others(
    served: tuple[str, Gateway], dovecot: DovecotServer
) -> None:
    base, gw = served
    flooder = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'flooder').key}"}
    other = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'other').key}"}
    with FaultProxy((dovecot.host, dovecot.imap_port)) as proxy, httpx.Client(timeout=120) as http:
        body = account_body("imap", proxy.port, dovecot.add_user())
        made = http.post(f"{base}/v1/accounts", json=body, headers=flooder)
        assert made.status_code == 201, made.text
        messages = f"{base}/v1/accounts/{made.json()['id']}/messages"
        assert http.get(f"{base}/v1/accounts", headers=other).status_code == 200  # warm

        proxy.stall()  # the flooder's mailbox stops answering
        with ThreadPoolExecutor(FLOOD) as pool:
            flood = [
                pool.submit(httpx.get, messages, headers=flooder, timeout=120) for _ in range(FLOOD)
            ]
            time.sleep(1.0)  # let the flood take what it can
            answer = http.get(f"{base}/v1/accounts", headers=other, timeout=20)
            assert answer.status_code == 200, answer.text
            assert not any(f.done() for f in flood)  # the flood was still stuck meanwhile
            proxy.resume()
            statuses = {f.result().status_code for f in flood}
    assert statuses <= {200, 502, 504}  # the stuck ones time out or get through, never 500
