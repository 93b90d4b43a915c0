"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_when_idle)
    return engine


# A pooled connection idle this long is pinged before use (the server may have closed it:
# a restart, an idle timeout). One reused sooner is not: under load that ping was a round
# trip on every checkout. A connection that breaks in use anyway is invalidated by
# SQLAlchemy and the operation fails once with a clear error.
PING_AFTER_IDLE_S = 1.0
_CHECKED_IN = "mailgate.checked_in"


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_when_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's documented custom pessimistic ping: raising DisconnectionError makes the
    pool drop this connection and check out another (a new one after a restart)."""
    idle_since = record.info.get(_CHECKED_IN)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()  # psycopg opened a transaction for the SELECT
    except Exception as error:
        raise exc.DisconnectionError() from error


def _private_file(path: Path) -> None:
    """The database holds POP3 mail: a directory Mailgate makes is 0700, a file it makes
    0600 (SQLite gives its -wal and -shm files the database file's mode)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # Deleted content is overwritten with zeros, so a deleted account's mail does not stay
    # readable in free pages of the file (the WAL keeps it only until the next checkpoint).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def scrub(engine: Engine) -> None:
    """After deleting data that must not stay readable (an account's mail): on SQLite, fold
    the WAL into the database and truncate it, so its old page images go too (secure_delete
    has already zeroed the freed pages). Best effort: a reader holding the WAL keeps it until
    the next checkpoint. Nothing to do on PostgreSQL (see README, Security)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads, on a :func:`read_connection`."""
    with read_connection(engine) as connection, Session(bind=connection) as session:
        yield session


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for a few quick reads: no BEGIN and no ROLLBACK around them. On
    PostgreSQL in autocommit (two round trips of the three a one-query read otherwise
    costs). On SQLite as it comes: the driver begins no transaction for a SELECT, so
    autocommit would only add the switch there and back (about half the cost of a short
    read); a rare write in between (the standard folders, made once) commits at the end."""
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
            return
        yield connection
        connection.commit()


@contextmanager
def autocommit(engine: Engine) -> Iterator[Connection]:
    """A connection whose every statement commits on its own (one round trip each)."""
    with engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")
