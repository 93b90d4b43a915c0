"""Short claims renewed by a heartbeat (issue 15, "any process may die"): a claim outlives
its ttl while its work runs, and a process killed while it holds claimed webhooks leaves
them to another process within seconds, delivered each exactly once and in order."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlmodel import col, select

from mailgate.domain.ids import new_id
from mailgate.events.dispatcher import Dispatcher
from mailgate.gateway import webhooks
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.claims import Claim, claimable, renewed
from mailgate.store.db import session_scope
from mailgate.store.migrate import upgrade
from mailgate.store.models import WebhookEndpoint, WebhookEvent, utcnow
from tests.conftest import make_settings
from tests.harness.serve import served_process

EVENTS = WebhookEvent.__table__  # type: ignore[attr-defined]


class Receiver:
    """An HTTP receiver on loopback that records the webhook-id of every request it answers
    200, in order. The first ``held`` requests wait for ``let_go`` (their sender is killed
    meanwhile) and are not counted; ``hang`` delays every answer."""

    def __init__(self, held: int = 0, hang: float = 0.0) -> None:
        self.held, self.hang = held, hang
        self.answered: list[str] = []
        self.arrived = threading.Event()  # a request is in
        self.let_go = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.arrived.set()
                with receiver.lock:
                    hold = receiver.held > 0
                    receiver.held -= hold
                if hold:
                    receiver.let_go.wait(60)
                    return  # no answer: its sender is gone
                time.sleep(receiver.hang)
                with receiver.lock:
                    receiver.answered.append(self.headers["webhook-id"])
                try:
                    self.send_response(200)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def ids(self) -> list[str]:
        with self.lock:
            return list(self.answered)

    def stop(self) -> None:
        self.let_go.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(held=1)
    yield made
    made.stop()


def _endpoint(gw: Gateway, url: str) -> tuple[str, str]:
    """A tenant and its webhook endpoint for ``message.created``: (tenant id, endpoint id)."""
    tenant_id = issue_api_key(gw.engine, f"t-{new_id('x')[-6:]}").tenant_id
    endpoint = WebhookEndpoint(
        id=new_id("whk"),
        tenant_id=tenant_id,
        url=url,
        events='["message.created"]',
        secret_encrypted=gw.passwords.encrypt("whsec_" + "A" * 32),
    )
    with session_scope(gw.engine) as session:
        session.add(endpoint)
    return tenant_id, endpoint.id


def _enqueue(gw: Gateway, tenant_id: str, count: int) -> list[str]:
    """``count`` events, one transaction each; returns their ids in delivery order."""
    for number in range(count):
        with session_scope(gw.engine) as session:
            webhooks.enqueue(session, tenant_id, "acc_none", "message.created", {"n": number})
    with session_scope(gw.engine) as session:
        return list(
            session.exec(
                select(WebhookEvent.id).order_by(col(WebhookEvent.created_at), col(WebhookEvent.id))
            ).all()
        )


def _take(gw: Gateway, owner: str, ttl: timedelta) -> list[str]:
    """Claim every free row, as another process's dispatcher would."""
    now = utcnow()
    with gw.engine.begin() as connection:
        return list(
            connection.execute(
                sa.update(EVENTS)
                .where(claimable(EVENTS, now))
                .values(claimed_until=now + ttl, claimed_by=owner)
                .returning(EVENTS.c.id)
            ).scalars()
        )


# --- the heartbeat ------------------------------------------------------------------------------


def test_a_renewed_claim_outlives_its_ttl_and_lapses_once_the_work_ends(
    gateway: Gateway,
) -> None:
    """Rows claimed for 0.3 s and held three times as long: nobody else can claim them while
    the heartbeat runs; once it stops they lapse and another claimer takes them, after
    which the first one neither renews nor releases them (they are no longer its)."""
    short = timedelta(seconds=0.3)
    tenant_id, _ = _endpoint(gateway, "https://1.1.1.1/hook")
    ids = _enqueue(gateway, tenant_id, 3)
    assert sorted(_take(gateway, "own_first", short)) == sorted(ids)
    claim = Claim(gateway.engine, EVENTS, "own_first", ids, short)
    with renewed(claim):
        for _ in range(5):
            time.sleep(0.2)
            assert _take(gateway, "own_second", short) == []
        assert all(claim.holds(row) for row in ids)
    time.sleep(0.4)  # no heartbeat any more: the claims lapse
    assert sorted(_take(gateway, "own_second", timedelta(minutes=1))) == sorted(ids)
    assert claim.renew() == 0
    assert not any(claim.holds(row) for row in ids)
    claim.release(ids)  # not its own any more: a no-op
    assert _take(gateway, "own_third", short) == []


def test_a_slow_delivery_keeps_its_claim_past_the_ttl(
    gateway: Gateway, tmp_path: Path, receiver: Receiver
) -> None:
    """A receiver that answers after 1.5 s, with claims of 0.5 s: a second dispatcher polling
    meanwhile claims nothing (the heartbeat keeps the first one's claims), and every event
    is delivered once, in order."""
    gw = Gateway.from_settings(
        make_settings(tmp_path, gateway.settings.database_url, allow_private_webhooks=True)
    )
    receiver.held, receiver.hang = 0, 1.5
    tenant_id, _ = _endpoint(gw, receiver.url)
    ids = _enqueue(gw, tenant_id, 2)
    first = Dispatcher(gw, claim_ttl=0.5, timeout=5.0)
    second = Dispatcher(gw, claim_ttl=0.5, timeout=5.0)
    try:
        running = threading.Thread(target=first.deliver_due)
        running.start()
        assert receiver.arrived.wait(5)  # the first one claimed them and is sending
        stolen = 0
        while running.is_alive():
            stolen += second.deliver_due()
            time.sleep(0.1)
        running.join()
        assert stolen == 0
        assert receiver.ids() == ids
    finally:
        first.close()
        second.close()
        gw.close()


# --- a process killed while it holds claims ----------------------------------------------------


@pytest.mark.postgres
def test_webhooks_claimed_by_a_killed_process_are_delivered_by_another_within_seconds(
    postgres_schema_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """Two `mailgate serve` on one PostgreSQL. Process A claims the endpoint's events and
    its first delivery hangs at the receiver; A is SIGKILLed there. Process B delivers
    every event, each exactly once and in order, within 30 s of the kill (before: the
    claims lasted batch x timeout + 60 s, and the endpoint stalled for 559 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env |= {
        "MAILGATE_DATABASE_URL": postgres_schema_url,
        "MAILGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "MAILGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
    }
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    gw = Gateway.from_settings(
        make_settings(tmp_path, postgres_schema_url, secret_key=env["MAILGATE_SECRET_KEY"])
    )
    upgrade(gw.engine)
    try:
        tenant_id, _ = _endpoint(gw, receiver.url)
        with served_process(
            {**env, "MAILGATE_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log"
        ) as a:
            ids = _enqueue(gw, tenant_id, 60)
            assert receiver.arrived.wait(15), (tmp_path / "a.log").read_text()
            with served_process(
                {**env, "MAILGATE_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log"
            ) as b:
                assert httpx.get(f"{b.url}/readyz").status_code == 200
                claimed = _claimed(gw)
                assert claimed >= 1  # A holds them; B cannot have any yet
                a.process.send_signal(signal.SIGKILL)
                a.process.wait()
                killed = time.monotonic()
                while len(receiver.ids()) < len(ids) and time.monotonic() - killed < 40:
                    time.sleep(0.2)
                took = time.monotonic() - killed
    finally:
        gw.close()
    answered = receiver.ids()
    assert Counter(answered) == Counter(ids), f"{len(answered)} of {len(ids)} after {took:.1f} s"
    assert answered == ids  # in order
    assert took < 30, f"the last webhook came {took:.1f} s after the kill"
    print(f"{len(ids)} webhooks ({claimed} claimed by the killed process): {took:.1f} s")


def _claimed(gw: Gateway) -> int:
    with gw.engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count())
                .select_from(EVENTS)
                .where(EVENTS.c.claimed_until > utcnow())
            ).scalar_one()
        )
