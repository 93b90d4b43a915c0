"""The event stream in a real browser: headless Chromium (Debian's package, installed by
scripts/install-test-servers.sh) opens a page served from another origin, which listens with
`new EventSource(url + "?access_token=...")` to the gateway served for real, with its IMAP
watcher running. A message appended straight to Dovecot must arrive in the page: through the
watcher, the change log, CORS (the page's origin allowed) and the browser's own SSE client.

The page writes what it got into its DOM and reports it to the server it came from (its own
origin: no CORS there), which is how the test reads it while Chromium keeps running."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from mailgate.store.models import ImapFolderState
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.net import LOOPBACK
from tests.harness.serve import served
from tests.helpers import account_body
from tests.mail_factory import text_message
from tests.test_watchers import eventually

CHROMIUM = "chromium"  # Debian's package: /usr/bin/chromium
PAGE = """<!doctype html>
<html><body><pre id="log"></pre><script>
const log = document.getElementById("log");
function report(kind, event) {
  const line = JSON.stringify({kind: kind, id: event.lastEventId, data: event.data || null});
  log.textContent += line + "\\n";
  fetch("/report", {method: "POST", body: line});
}
const source = new EventSource(%(url)s + "?access_token=" + encodeURIComponent(%(token)s));
source.addEventListener("ready", (event) => report("ready", event));
source.addEventListener("message.created", (event) => report("message.created", event));
source.onerror = () => report("error", {lastEventId: "", data: String(source.readyState)});
</script></body></html>
"""


class Page:
    """The page's own origin: serves the page and takes its reports."""

    def __init__(self) -> None:
        self.html = b""
        self.reports: queue.Queue[dict[str, Any]] = queue.Queue()
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page.html)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                page.reports.put(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.origin = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_report(self, timeout: float = 30) -> dict[str, Any]:
        try:
            return self.reports.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("the page reported nothing")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def page() -> Iterator[Page]:
    made = Page()
    yield made
    made.close()


@pytest.fixture
def browser_gateway(tmp_path: Path, sqlite_url: str, page: Page) -> Iterator[Gateway]:
    settings = make_settings(
        tmp_path, sqlite_url, cors_origins=[page.origin], imap_poll_interval=0.5
    )
    gw = Gateway.from_settings(settings)
    upgrade(gw.engine)
    yield gw
    gw.close()


def chromium(url: str, profile: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which(CHROMIUM)
    if binary is None:
        pytest.fail(
            "chromium not found: the browser test needs Debian's chromium package; "
            "scripts/install-test-servers.sh (run by scripts/test.sh) installs it"
        )
    return subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",  # tests may run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_browser_receives_new_mail_through_event_source(
    browser_gateway: Gateway,
    page: Page,
    dovecot: DovecotServer,
    mail_user: MailUser,
    tmp_path: Path,
) -> None:
    gw = browser_gateway
    key = issue_api_key(gw.engine, "shop").key
    with served(create_app(gw, background=True)) as base_url:
        api = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=20
        )
        made = api.post("/v1/accounts", json=account_body("imap", dovecot.imap_port, mail_user))
        assert made.status_code == 201, made.text
        account_id = made.json()["id"]
        token = api.post("/v1/events/tokens", json={"account_id": account_id}).json()["token"]
        # the watcher's first round takes a baseline: mail appended after it is new
        eventually(lambda: _watched(gw, account_id), "the watcher's baseline")

        stream_url = f"{base_url}/v1/accounts/{account_id}/events"
        page.html = (PAGE % {"url": json.dumps(stream_url), "token": json.dumps(token)}).encode()
        browser = chromium(page.origin + "/", tmp_path / "chromium")
        try:
            ready = page.next_report(timeout=60)
            assert ready["kind"] == "ready", ready
            dovecot.append(mail_user, text_message("Seen by a browser", "pushed"))
            created = page.next_report()
        finally:
            browser.terminate()
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()
            api.close()
    assert created["kind"] == "message.created", created
    body = json.loads(created["data"])
    assert body["type"] == "message.created"
    assert body["data"]["account_id"] == account_id
    assert body["data"]["subject"] == "Seen by a browser"
    assert created["id"].startswith("s") and created["id"] != ready["id"]


def _watched(gw: Gateway, account_id: str) -> bool:
    with Session(gw.engine) as session:
        found = session.exec(
            select(ImapFolderState).where(
                col(ImapFolderState.account_id) == account_id,
                col(ImapFolderState.folder_path) == "INBOX",
            )
        ).first()
    return found is not None
