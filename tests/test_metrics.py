"""GET /metrics as Prometheus scrapes it: no API key, the text format, and the numbers an
operator reads after real work against a real Dovecot, a real webhook receiver, real
watcher threads and the POP3 poller, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mailgate.api.app import create_app
from mailgate.events.dispatcher import Dispatcher
from mailgate.events.poller import MailPoller
from mailgate.events.watchers import ImapWatchers
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body, assert_problem
from tests.mail_factory import text_message
from tests.test_webhooks import Receiver, _create, _enqueue, _tenant, receiver  # noqa: F401

MESSAGES_ROUTE = "/v1/accounts/{account_id}/messages"
PATIENCE = 30.0


def scrape(client: TestClient) -> str:
    response = client.get("/metrics")  # no Authorization header
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def value(text: str, sample: str, **labels: str) -> float | None:
    """The value of the one sample of that name whose labels include ``labels``."""
    found = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    ]
    assert len(found) <= 1, f"{sample} {labels} names several series"
    return found[0] if found else None


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture
def gw(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    """A gateway that may post webhooks to the loopback receiver."""
    gateway = Gateway.from_settings(
        make_settings(tmp_path, database_url, allow_private_webhooks=True)
    )
    upgrade(gateway.engine)
    yield gateway
    gateway.close()


@pytest.fixture
def api(gw: Gateway) -> Iterator[TestClient]:
    with TestClient(create_app(gw), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def key(gw: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_api_key(gw.engine, 'shop').key}"}


def add_account(
    api: TestClient, key: dict[str, str], protocol: str, port: int, user: MailUser
) -> str:
    response = api.post("/v1/accounts", json=account_body(protocol, port, user), headers=key)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_metrics_need_no_key_and_include_the_process(api: TestClient) -> None:
    text = scrape(api)
    assert (value(text, "process_resident_memory_bytes") or 0) > 0
    assert value(text, "python_info") == 1
    assert value(text, "mailgate_webhook_outbox_depth") == 0


def test_requests_are_counted_by_route_template_without_ids(
    api: TestClient, key: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account_id = add_account(api, key, "imap", dovecot.imap_port, mail_user)
    listed = api.get(f"/v1/accounts/{account_id}/messages", headers=key)
    assert listed.status_code == 200, listed.text
    assert api.get("/no/such/path").status_code == 404

    text = scrape(api)
    request = "mailgate_http_request_duration_seconds_count"
    assert (value(text, request, method="GET", route=MESSAGES_ROUTE, status="2xx") or 0) >= 1
    assert value(text, request, method="POST", route="/v1/accounts", status="2xx") == 1
    assert value(text, request, method="GET", route="unmatched", status="4xx") == 1
    # the account's login and listing, by server host
    command = "mailgate_mailbox_command_duration_seconds_count"
    assert value(text, command, protocol="imap", operation="imap.verify", server="127.0.0.1")
    assert account_id not in text and "/no/such/path" not in text


def test_a_wrong_password_is_a_mailbox_command_error_of_its_server(
    api: TestClient, key: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    body = account_body("imap", dovecot.imap_port, mail_user, password="wrong-Pa55word")
    assert_problem(api.post("/v1/accounts", json=body, headers=key), 422, "mailbox-auth-failed")

    text = scrape(api)
    errors = "mailgate_mailbox_command_errors_total"
    labels = {"protocol": "imap", "operation": "imap.verify", "server": "127.0.0.1"}
    assert value(text, errors, error="mailbox-auth-failed", **labels) == 1
    assert value(text, "mailgate_http_request_duration_seconds_count", status="4xx") == 1


def test_a_pop3_sync_is_timed_by_outcome(
    api: TestClient,
    gw: Gateway,
    key: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
) -> None:
    add_account(api, key, "pop3", dovecot.pop3_port, mail_user)
    dovecot.deliver(mail_user, [text_message("Your receipt", "Thanks")])
    poller = MailPoller(gw, interval=0, kept_state_only=True)  # due at once
    try:
        assert poller.run_once() == 1
    finally:
        poller.close()

    text = scrape(api)
    assert value(text, "mailgate_pop3_sync_duration_seconds_count", outcome="ok") == 1
    assert value(text, "mailgate_mailbox_command_duration_seconds_count", operation="pop3.sync")


def test_a_delivered_webhook_shows_its_duration_latency_and_the_outbox_draining(
    api: TestClient,
    gw: Gateway,
    receiver: Receiver,  # noqa: F811
) -> None:
    tenant = _tenant(gw, "shop")
    _create(api, tenant, receiver.url)
    _enqueue(gw, tenant, subject="Hello")
    assert value(scrape(api), "mailgate_webhook_outbox_depth") == 1

    dispatcher = Dispatcher(gw, timeout=5.0)
    try:
        assert dispatcher.deliver_due() == 1
    finally:
        dispatcher.close()
    assert len(receiver.requests) == 1

    text = scrape(api)
    assert value(text, "mailgate_webhook_outbox_depth") == 0
    duration = "mailgate_webhook_delivery_duration_seconds_count"
    assert value(text, duration, outcome="delivered") == 1
    assert value(text, "mailgate_webhook_delivery_latency_seconds_count") == 1
    latency_sum = value(text, "mailgate_webhook_delivery_latency_seconds_sum")
    assert latency_sum is not None and latency_sum > 0


def test_a_watched_account_and_its_lag_are_shown(
    api: TestClient,
    gw: Gateway,
    key: dict[str, str],
    dovecot: DovecotServer,
    mail_user: MailUser,
) -> None:
    add_account(api, key, "imap", dovecot.imap_port, mail_user)
    assert value(scrape(api), "mailgate_watched_accounts") == 0
    watchers = ImapWatchers(gw, 3600.0)  # only IDLE wakes it during the test
    try:
        watchers.reconcile()
        eventually(
            lambda: value(scrape(api), "mailgate_watched_accounts") == 1, "one watched account"
        )
        eventually(
            lambda: all(w.waiting.is_set() for _, w in watchers.running.values()),
            "the watcher to idle",
        )
        dovecot.append(mail_user, text_message("While idling", "one"))
        eventually(
            lambda: value(scrape(api), "mailgate_watch_lag_seconds_count") == 1,
            "the new mail's watch round",
        )
    finally:
        watchers.close()
    assert value(scrape(api), "mailgate_watched_accounts") == 0
