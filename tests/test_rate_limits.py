"""Rate limits: a key's requests a minute, counted by every process together in the database,
answered `429` with `Retry-After` and `RateLimit-*` past it; a client address sending wrong
keys is slowed down. On SQLite and PostgreSQL; across two `mailgate serve` processes on
PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.tally import BATCH
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.db import autocommit
from mailgate.store.migrate import upgrade
from mailgate.store.rate_limits import count_request, requests_in_window
from tests.conftest import make_settings
from tests.harness.serve import served_process
from tests.helpers import assert_problem


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def within_one_window() -> None:
    """Counts start again each minute: a test that needs its requests in one minute starts
    early enough in it (this waits, it asserts nothing about time)."""
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.1)


@pytest.fixture
def limited(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    """A gateway whose keys may make 3 requests a minute, and addresses send 3 bad keys."""
    settings = make_settings(tmp_path, database_url, rate_limit_per_minute=3, bad_keys_per_minute=3)
    gw = Gateway.from_settings(settings)
    upgrade(gw.engine)
    yield gw
    gw.close()


def test_a_key_past_its_limit_is_told_to_wait(limited: Gateway) -> None:
    key = bearer(issue_api_key(limited.engine, "shop").key)
    other = bearer(issue_api_key(limited.engine, "shop").key)
    within_one_window()
    with TestClient(create_app(limited)) as client:
        answers = [client.get("/v1/accounts", headers=key) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
        assert {a.headers["RateLimit-Limit"] for a in answers} == {"3"}
        assert answers[0].headers["RateLimit-Policy"] == "3;w=60"
        refused = client.get("/v1/accounts/acc_whatever0000", headers=key)
        problem = assert_problem(refused, 429, "rate-limited")
        assert "3 requests a minute" in str(problem["detail"])
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert int(refused.headers["RateLimit-Reset"]) == int(refused.headers["Retry-After"])
        # another key of the same tenant has its own count; errors count and say so too
        missing = client.get("/v1/accounts/acc_whatever0000", headers=other)
        assert_problem(missing, 404, "not-found")
        assert missing.headers["RateLimit-Remaining"] == "2"
        # a refused request does not help: still refused
        assert_problem(client.get("/v1/accounts", headers=key), 429, "rate-limited")


def test_a_key_may_have_its_own_limit(limited: Gateway) -> None:
    admin = bearer(issue_api_key(limited.engine, "shop").key)
    within_one_window()
    with TestClient(create_app(limited)) as client:
        made = client.post(
            "/v1/keys",
            headers=admin,
            json={"name": "bulk", "scopes": ["read"], "rate_limit_per_minute": 5},
        )
        assert made.status_code == 201, made.text
        key = bearer(made.json()["key"])
        answers = [client.get("/v1/accounts", headers=key) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert answers[0].headers["RateLimit-Limit"] == "5"


def test_far_from_its_limit_a_key_is_counted_exactly_and_written_in_batches(
    tmp_path: Path, database_url: str
) -> None:
    """One process counts every request in its answers; the database's count, which other
    processes read, lags by less than a batch (`gateway.tally`)."""
    settings = make_settings(tmp_path, database_url, rate_limit_per_minute=1000)
    gw = Gateway.from_settings(settings)
    upgrade(gw.engine)
    try:
        issued = issue_api_key(gw.engine, "shop")
        within_one_window()
        with TestClient(create_app(gw)) as client:
            answers = [client.get("/v1/accounts", headers=bearer(issued.key)) for _ in range(40)]
        assert {a.status_code for a in answers} == {200}
        remaining = [int(a.headers["RateLimit-Remaining"]) for a in answers]
        assert remaining == list(range(999, 959, -1))
        with autocommit(gw.engine) as connection:
            written = requests_in_window(
                connection, f"key:{issued.key_id}", int(time.time()) // 60 * 60
            )
        assert 40 - BATCH < written <= 40
    finally:
        gw.close()


def test_no_limit_no_headers(tmp_path: Path, sqlite_url: str) -> None:
    gw = Gateway.from_settings(make_settings(tmp_path, sqlite_url, rate_limit_per_minute=0))
    upgrade(gw.engine)
    try:
        key = bearer(issue_api_key(gw.engine, "shop").key)
        with TestClient(create_app(gw)) as client:
            answers = [client.get("/v1/accounts", headers=key) for _ in range(10)]
        assert {a.status_code for a in answers} == {200}
        assert "RateLimit-Limit" not in answers[-1].headers
    finally:
        gw.close()


def test_wrong_keys_from_one_address_slow_it_down(limited: Gateway) -> None:
    used = bearer(issue_api_key(limited.engine, "shop").key)
    fresh = bearer(issue_api_key(limited.engine, "shop").key)
    within_one_window()
    app = create_app(limited)
    with (
        TestClient(app, client=("203.0.113.7", 5000)) as client,
        TestClient(app, client=("198.51.100.1", 5000)) as elsewhere,
    ):
        assert client.get("/v1/accounts", headers=used).status_code == 200
        wrong = [client.get("/v1/accounts", headers=bearer(f"mg_wrong{i}")) for i in range(3)]
        assert [a.status_code for a in wrong] == [401, 401, 401]
        blocked = client.get("/v1/accounts", headers=bearer("mg_wrong4"))
        assert_problem(blocked, 429, "rate-limited")
        assert 1 <= int(blocked.headers["Retry-After"]) <= 60
        # while blocked, no key is checked from there: not even a right one
        assert_problem(client.get("/v1/accounts", headers=fresh), 429, "rate-limited")
        # a key the server checked lately still passes (a shared address is not locked out)
        assert client.get("/v1/accounts", headers=used).status_code == 200
        # other addresses are not concerned
        assert elsewhere.get("/v1/accounts", headers=fresh).status_code == 200
        assert_problem(elsewhere.get("/v1/accounts", headers=bearer("mg_x")), 401, "unauthorized")


def test_counts_start_again_each_window(gateway: Gateway) -> None:
    with autocommit(gateway.engine) as connection:
        assert [count_request(connection, "key:a", 600) for _ in range(3)] == [1, 2, 3]
        assert count_request(connection, "key:b", 600) == 1
        assert requests_in_window(connection, "key:a", 600) == 3
        assert count_request(connection, "key:a", 660) == 1
        assert requests_in_window(connection, "key:a", 600) == 0
        assert requests_in_window(connection, "key:a", 660) == 1


@contextmanager
def two_processes(
    database_url: str, tmp_path: Path, limit: int
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Two `mailgate serve` processes on one database with this rate limit: their URLs and
    the header of a new key, once it is early enough in a minute (:func:`within_one_window`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env |= {
        "MAILGATE_DATABASE_URL": database_url,
        "MAILGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "MAILGATE_RATE_LIMIT_PER_MINUTE": str(limit),
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        served_process({**env, "MAILGATE_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log") as a,
        served_process({**env, "MAILGATE_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log") as b,
    ):
        gw = Gateway.from_settings(make_settings(tmp_path, database_url))
        key = bearer(issue_api_key(gw.engine, "shop").key)
        gw.close()
        within_one_window()
        yield a.url, b.url, key


@pytest.mark.postgres
def test_the_limit_holds_across_processes(postgres_schema_url: str, tmp_path: Path) -> None:
    """Two `mailgate serve` processes on one PostgreSQL: a key's requests to both count
    together."""
    with two_processes(postgres_schema_url, tmp_path, 4) as (a, b, key):
        answers = [httpx.get(f"{url}/v1/accounts", headers=key) for url in (a, b, a, b, a, b)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 429, 429]
    assert [answer.headers["RateLimit-Remaining"] for answer in answers[:4]] == ["3", "2", "1", "0"]
    assert_problem(answers[5], 429, "rate-limited")


@pytest.mark.postgres
def test_two_processes_let_a_key_past_its_limit_by_less_than_a_batch(
    postgres_schema_url: str, tmp_path: Path
) -> None:
    """Far from its limit a key's requests are written in batches; near it every request is
    written and read back, so two processes together overshoot by less than one batch."""
    limit = 80
    with (
        two_processes(postgres_schema_url, tmp_path, limit) as (a, b, key),
        httpx.Client(base_url=a) as to_a,
        httpx.Client(base_url=b) as to_b,
    ):
        answers = [
            client.get("/v1/accounts", headers=key).status_code
            for _ in range(70)
            for client in (to_a, to_b)
        ]
    assert set(answers) == {200, 429}
    assert limit <= answers.count(200) < limit + BATCH
    assert set(answers[-20:]) == {429}
