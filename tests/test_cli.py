"""The `mailgate` command as a newcomer runs it: serve on SQLite, create a key, call the API."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailgate.api.cli import GRACEFUL_SHUTDOWN_SECONDS
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.serve import MAILGATE, served_process
from tests.helpers import account_body


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env["MAILGATE_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.fixture
def served(cli_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log_path = tmp_path / "serve.log"
    with served_process(cli_env, log_path) as server:
        yield server.url, log_path


def test_serve_migrates_and_answers_with_a_new_key(
    served: tuple[str, Path], cli_env: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    base, log_path = served
    data_dir = Path(cli_env["MAILGATE_DATA_DIR"])
    assert (data_dir / "mailgate.db").exists()
    assert oct((data_dir / "secret.key").stat().st_mode & 0o777) == "0o600"
    key = subprocess.run(
        [*MAILGATE, "keys", "create", "--tenant", "demo"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert key.startswith("mg_")
    headers = {"Authorization": f"Bearer {key}"}
    created = httpx.post(
        f"{base}/v1/accounts",
        headers=headers,
        json=account_body("imap", dovecot.imap_port, mail_user),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    listed = httpx.get(f"{base}/v1/accounts", headers=headers).json()
    assert [a["id"] for a in listed["items"]] == [created.json()["id"]]
    logs = log_path.read_text()
    assert '"operation": "imap.verify"' in logs and '"status": 201' in logs
    assert mail_user.password not in logs and key not in logs


def test_migrate_and_openapi_commands(cli_env: dict[str, str]) -> None:
    migrate = subprocess.run([*MAILGATE, "migrate"], env=cli_env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    spec = subprocess.run([*MAILGATE, "openapi"], env=cli_env, capture_output=True, text=True)
    assert spec.returncode == 0 and '"/v1/accounts"' in spec.stdout


def test_bad_secret_key_stops_with_a_clear_message(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "MAILGATE_SECRET_KEY": "not-a-fernet-key"}
    result = subprocess.run([*MAILGATE, "migrate"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "MAILGATE_SECRET_KEY" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_keys_create_takes_scopes_and_a_name(
    served: tuple[str, Path], cli_env: dict[str, str]
) -> None:
    base, _log = served
    made = subprocess.run(
        [*MAILGATE, "keys", "create", "--tenant", "demo", "--scope", "read", "--name", "viewer"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    viewer = {"Authorization": f"Bearer {made.stdout.strip()}"}
    assert httpx.get(f"{base}/v1/accounts", headers=viewer).status_code == 200
    refused = httpx.post(f"{base}/v1/keys", headers=viewer, json={"name": "x", "scopes": ["admin"]})
    assert refused.status_code == 403 and refused.json()["type"] == "insufficient-scope"
    wrong = subprocess.run(
        [*MAILGATE, "keys", "create", "--tenant", "demo", "--scope", "root"],
        env=cli_env,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "unknown scope 'root'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_sigterm_ends_event_streams_and_the_process_at_once(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """An open event stream never ends by itself; on SIGTERM it ends cleanly (its client
    reconnects elsewhere with Last-Event-ID) and the process stops, without waiting out the
    graceful-shutdown limit and without a traceback."""
    log_path = tmp_path / "serve.log"
    with served_process(cli_env, log_path) as server:
        key = subprocess.run(
            [*MAILGATE, "keys", "create", "--tenant", "demo"],
            env=cli_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream("GET", f"{server.url}/v1/events", headers=headers, timeout=60) as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: ready"
            server.process.send_signal(signal.SIGTERM)
            rest = list(lines)  # the stream ends (no error) once the server drains it
        # uvicorn re-raises the signal once it has shut down: the exit status says SIGTERM
        ended = server.process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS - 5)
        assert ended in (0, -signal.SIGTERM)
    assert not [line for line in rest if line.startswith("event:")]  # ended, no error event
    logs = log_path.read_text()
    assert "Application shutdown complete" in logs and "Traceback" not in logs
