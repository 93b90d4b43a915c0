"""Mail at rest in the embedded SQLite store: a private data directory and files, and no
readable trace of a deleted account's mail in the file (WAL included)."""

from __future__ import annotations

import stat
from pathlib import Path

from fastapi.testclient import TestClient

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body
from tests.mail_factory import text_message

MARKER = "zebra-quokka-7f3a1c secret invoice text"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_deleted_account_leaves_no_trace_in_the_file(
    tmp_path: Path, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    data_dir = tmp_path / "fresh" / "data"
    gw = Gateway.from_settings(make_settings(tmp_path, None, data_dir=data_dir))
    gw.migrate()
    try:
        database = data_dir / "mailgate.db"
        assert _mode(data_dir) == 0o700
        assert _mode(database) == 0o600
        auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'tenant').key}"}
        dovecot.deliver(mail_user, [text_message("Invoice", MARKER)])
        with TestClient(create_app(gw)) as client:
            body = account_body("pop3", dovecot.pop3_port, mail_user)
            account = client.post("/v1/accounts", json=body, headers=auth)
            assert account.status_code == 201, account.text
            base = f"/v1/accounts/{account.json()['id']}"
            [listed] = client.get(f"{base}/messages", headers=auth).json()["items"]
            text = client.get(f"{base}/messages/{listed['id']}", headers=auth).json()["text"]
            assert MARKER in text
            wal = database.with_name("mailgate.db-wal")
            assert wal.exists() and _mode(wal) == 0o600
            assert client.delete(base, headers=auth).status_code == 204
        for path in data_dir.iterdir():
            assert MARKER.encode() not in path.read_bytes(), path.name
    finally:
        gw.close()
