"""The real things a schemathesis run (tests/test_fuzz_api.py) aims at: an IMAP and a POP3
account of real Dovecot users, seeded with mail, and a webhook endpoint.

Schemathesis draws ids from dictionaries of placeholders (``~imap``, ``~message``, ...), not
of real ids, because the run deletes and re-creates things: an account the fuzzer deleted
comes back with a new id. Right before each call :meth:`World.resolve` puts in the current
real values, re-reading (and re-seeding) the mailboxes only after a call that may have
changed them. Placeholders use no character that URL-encoding changes (path values arrive
encoded); the two port placeholders are numbers no other field takes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body
from tests.mail_factory import dated, message_with_attachments

FUZZ_FOLDER = "Fuzz"  # a folder of the run's own, next to INBOX and the special-use ones
WEBHOOK_URL = "https://1.1.1.1/mailgate-fuzz"  # public, so the SSRF guard lets it in; never called
# What schemathesis draws from, by dictionary name (see PARAMETERS in test_fuzz_api.py).
PLACEHOLDERS: dict[str, list[str | int]] = {
    "accounts": ["~imap", "~pop3"],
    "folders": ["~inbox", "~folder"],
    "messages": ["~message", "~other-message"],
    "attachments": ["~attachment"],
    "webhooks": ["~webhook"],
    "cursors": ["~cursor"],
    "states": ["~state"],
    # a new account's connection settings: the test Dovecot, plain, a real user
    "hosts": ["~host"],
    "ports": [65143, 65110],
    "usernames": ["~username"],
    "passwords": ["~password"],
    "securities": ["none"],
    "urls": [WEBHOOK_URL],
}
MIN_MESSAGES = 3


def _expect(response: Any, status: int) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json()


@dataclass
class Box:
    """One account of the run; ``ids`` (placeholder -> real value) is None while stale."""

    protocol: str
    user: MailUser
    account_id: str = ""
    ids: dict[str, str] | None = None


@dataclass
class World:
    client: TestClient
    auth: dict[str, str]
    dovecot: DovecotServer
    boxes: dict[str, Box] = field(default_factory=dict)
    webhook_id: str = ""
    # (operation label, status) -> how many calls answered it
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)

    @classmethod
    def make(cls, client: TestClient, auth: dict[str, str], dovecot: DovecotServer) -> World:
        world = cls(client, auth, dovecot)
        for protocol in ("imap", "pop3"):
            world.boxes["~" + protocol] = Box(protocol, dovecot.add_user())
        for box in world.boxes.values():
            world._refresh(box)
        return world

    def is_ours(self, account_id: object) -> bool:
        """Whether the id is one of the run's own (healthy, Dovecot) accounts."""
        return any(account_id == box.account_id for box in self.boxes.values())

    # -- placeholders --------------------------------------------------------------------

    def resolve(self, case: Any) -> None:
        """Replace the placeholders in ``case`` (path, query, body) with current real values.
        Folder, message and attachment ids are those of the account the path names."""
        path = case.path_parameters or {}
        box = self.boxes.get(str(path.get("account_id")), self.boxes["~imap"])
        values = self._values(box)
        if case.path_parameters:
            quoted = {key: quote(str(value), safe="") for key, value in values.items()}
            case.path_parameters = _replace(case.path_parameters, quoted)
        if case.query:
            case.query = _replace(case.query, values)
        if isinstance(case.body, dict | list):
            case.body = _replace(case.body, values)

    def record(self, case: Any, status: int) -> None:
        """Count the answer; anything but a read may have changed the mailboxes."""
        self.answers[(case.operation.label, status)] += 1
        if case.method.upper() != "GET":
            for box in self.boxes.values():
                box.ids = None

    def succeeded(self, label: str) -> int:
        return sum(n for (op, status), n in self.answers.items() if op == label and status < 300)

    # -- the real things -----------------------------------------------------------------

    def _values(self, box: Box) -> dict[str | int, str | int]:
        if box.ids is None:
            self._refresh(box)
            self._webhook()
        assert box.ids is not None
        imap_user = self.boxes["~imap"].user
        return {
            **box.ids,
            **{key: b.account_id for key, b in self.boxes.items()},
            "~webhook": self.webhook_id,
            "~host": self.dovecot.host,
            65143: self.dovecot.imap_port,
            65110: self.dovecot.pop3_port,
            "~username": imap_user.username,
            "~password": imap_user.password,
        }

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=self.auth, **kwargs)

    def _refresh(self, box: Box) -> None:
        """Make sure the account, its Fuzz folder and a few messages (one with an
        attachment) are there, and note their ids."""
        base = f"/v1/accounts/{box.account_id}"
        if not box.account_id or self._call("GET", base).status_code == 404:
            port = self.dovecot.imap_port if box.protocol == "imap" else self.dovecot.pop3_port
            body = account_body(box.protocol, port, box.user)
            box.account_id = _expect(self._call("POST", "/v1/accounts", json=body), 201)["id"]
            base = f"/v1/accounts/{box.account_id}"
        listed = _expect(self._call("GET", base + "/folders"), 200)["items"]
        folders = {f["path"]: f["id"] for f in listed}
        if FUZZ_FOLDER not in folders:
            made = self._call("POST", base + "/folders", json={"name": FUZZ_FOLDER})
            folders[FUZZ_FOLDER] = _expect(made, 201)["id"]
        messages = self._inbox(base, folders["INBOX"])
        if len(messages) < MIN_MESSAGES or not any(m["has_attachments"] for m in messages):
            self.dovecot.deliver(box.user, [*dated(2), message_with_attachments()])
            messages = self._inbox(base, folders["INBOX"])
        with_attachment = next(m for m in messages if m["has_attachments"])
        other = next(m for m in messages if m["id"] != with_attachment["id"])
        full = _expect(self._call("GET", f"{base}/messages/{with_attachment['id']}"), 200)
        page = self._call("GET", base + "/messages", params={"limit": 1})
        box.ids = {
            "~inbox": folders["INBOX"],
            "~folder": folders[FUZZ_FOLDER],
            "~message": with_attachment["id"],
            "~other-message": other["id"],
            "~attachment": full["attachments"][0]["id"],
            "~cursor": _expect(page, 200)["next_cursor"],
            "~state": _expect(self._call("GET", base + "/changes"), 200)["state"],
        }

    def _inbox(self, base: str, inbox_id: str) -> list[dict[str, Any]]:
        listing = self._call("GET", base + "/messages", params={"folder_id": inbox_id})
        return list(_expect(listing, 200)["items"])

    def _webhook(self) -> None:
        known = self.webhook_id and self._call("GET", f"/v1/webhooks/{self.webhook_id}")
        if not known or known.status_code == 404:
            made = self._call("POST", "/v1/webhooks", json={"url": WEBHOOK_URL, "events": ["*"]})
            self.webhook_id = _expect(made, 201)["id"]


def _replace(value: Any, values: dict[Any, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _replace(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, values) for item in value]
    if isinstance(value, str | int) and not isinstance(value, bool):
        return values.get(value, value)
    return value
