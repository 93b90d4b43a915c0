"""Fixtures: a migrated gateway on SQLite or PostgreSQL, an API client, API keys."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.settings import Settings
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade

pytest_plugins = ["tests.harness.fixtures"]

POSTGRES_URL = os.environ.get(
    "MAILGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards, so runs never meet."""
    schema = f"mg_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc.orig}")
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailgate.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mailgate.db'}"


def make_settings(tmp_path: Path, database_url: str | None, **overrides: object) -> Settings:
    """Test settings; ``database_url`` None: the embedded default, SQLite in the data dir."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "connect_timeout": 2.0,
        "pop3_sync_interval": 0.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def gateway(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    """A migrated gateway on each database backend."""
    gw = Gateway.from_settings(make_settings(tmp_path, database_url))
    upgrade(gw.engine)
    yield gw
    gw.close()


@pytest.fixture
def client(gateway: Gateway) -> Iterator[TestClient]:
    with TestClient(create_app(gateway), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def api_key(gateway: Gateway) -> str:
    return issue_api_key(gateway.engine, "tenant-a").key


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def other_auth(gateway: Gateway) -> dict[str, str]:
    """An API key of a second tenant."""
    return {"Authorization": f"Bearer {issue_api_key(gateway.engine, 'tenant-b').key}"}
