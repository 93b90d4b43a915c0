"""The schema: migrations and models agree, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import mailgate.store.models  # noqa: F401
from mailgate.gateway.context import Gateway
from mailgate.gateway.keys import grant_for_key
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.changes import current_state, record_now
from mailgate.store.migrate import upgrade
from mailgate.store.models import utcnow
from tests.conftest import make_settings


def test_migrations_match_the_models(gateway: Gateway) -> None:
    with gateway.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_migrations_create_every_table(gateway: Gateway) -> None:
    tables = set(sa.inspect(gateway.engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_api_keys_are_stored_as_hashes_only(gateway: Gateway) -> None:
    issued = issue_api_key(gateway.engine, "acme")
    again = issue_api_key(gateway.engine, "acme")
    assert issued.tenant_id == again.tenant_id and issued.key != again.key
    with gateway.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM api_key")).all()
    dump = repr(rows)
    assert issued.key not in dump and again.key not in dump
    grant = grant_for_key(gateway.engine, issued.key)
    assert grant is not None and grant.tenant_id == issued.tenant_id
    assert grant.scopes == {"read", "write", "send", "admin"}  # the CLI's key: `admin`
    assert grant_for_key(gateway.engine, issued.key + "x") is None


def test_alias_store_round_trip_and_cascade(gateway: Gateway) -> None:
    from mailgate.domain.ids import MessageLocation, new_id
    from mailgate.store.aliases import SqlAliasStore
    from mailgate.store.db import session_scope
    from mailgate.store.models import Account

    issued = issue_api_key(gateway.engine, "acme")
    account_id = new_id("acc")
    with session_scope(gateway.engine) as session:
        session.add(
            Account(
                id=account_id,
                tenant_id=issued.tenant_id,
                protocol="imap",
                host="h",
                port=143,
                security="none",
                username="u",
                password_encrypted="x",
            )
        )
    store = SqlAliasStore(gateway.engine, account_id)
    here = MessageLocation("Archive/2024", 4_000_000_000, 4_000_000_001)  # UIDs are 32-bit unsigned
    store.record("msg_a", MessageLocation("INBOX", 1, 1))
    store.record("msg_a", here)
    assert store.resolve("msg_a") == here
    assert store.ids_at("Archive/2024", 4_000_000_000, [4_000_000_001, 5]) == {
        4_000_000_001: "msg_a"
    }
    assert SqlAliasStore(gateway.engine, "acc_other").resolve("msg_a") is None
    store.forget("msg_a")
    assert store.resolve("msg_a") is None
    store.record("msg_b", here)
    with session_scope(gateway.engine) as session:
        session.delete(session.get(Account, account_id))
    with gateway.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM message_alias")).scalar_one() == 0


def test_the_change_log_is_numbered_per_account_on_upgrade(
    tmp_path: Path, database_url: str
) -> None:
    """Migration 0011: rows written under the global numbering get each account's own
    numbers in their order, and the counters continue from there."""
    engine = sa.create_engine(make_settings(tmp_path, database_url).resolved_database_url)
    try:
        upgrade(engine, "0010")
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO tenant (id, name, created_at) VALUES ('t1', 't1', :now)"),
                {"now": utcnow()},
            )
            for account in ("acc_a", "acc_b"):
                connection.execute(
                    sa.text(
                        "INSERT INTO account (id, tenant_id, protocol, host, port, security,"
                        " tls_verify, username, password_encrypted, pop3_leave_on_server,"
                        " pop3_purge_on_server, pop3_keep_server_deleted, state, created_at,"
                        " updated_at) VALUES (:id, 't1', 'imap', 'h', 143, 'none', true, 'u',"
                        " 'x', true, false, true, 'connected', :now, :now)"
                    ),
                    {"id": account, "now": utcnow()},
                )
            for account in ("acc_a", "acc_b", "acc_a", "acc_a", "acc_b"):
                connection.execute(
                    sa.text(
                        "INSERT INTO change_log (account_id, kind, object_id, change, created_at)"
                        " VALUES (:account, 'folder', 'x', 'created', :now)"
                    ),
                    {"account": account, "now": utcnow()},
                )
        upgrade(engine)
        with engine.connect() as connection:
            numbered = connection.execute(
                sa.text("SELECT account_id, account_seq FROM change_log ORDER BY seq")
            ).all()
        assert [tuple(row) for row in numbered] == [
            ("acc_a", 1),
            ("acc_b", 1),
            ("acc_a", 2),
            ("acc_a", 3),
            ("acc_b", 2),
        ]
        record_now(engine, "acc_b", [("folder", "y", "created")])
        assert (current_state(engine, "acc_a"), current_state(engine, "acc_b")) == (3, 3)
    finally:
        engine.dispose()
