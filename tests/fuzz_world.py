"""The real things a schemathesis run (tests/test_fuzz_api.py) aims at: an IMAP and a POP3
account of real Dovecot users, seeded with mail, an IMAP account that logs in with OAuth2
(the test authorization server and its Dovecot), two OAuth2 apps (one in use, one spare), a
sign-in under way for the callback, a webhook endpoint and a spare API key.

Schemathesis draws ids from dictionaries of placeholders (``~imap``, ``~message``, ...), not
of real ids, because the run deletes and re-creates things: an account the fuzzer deleted
comes back with a new id. Right before each call :meth:`World.resolve` puts in the current
real values, re-reading (and re-seeding) the mailboxes only after a call that may have
changed them. Placeholders use no character that URL-encoding changes (path values arrive
encoded); the two port placeholders are numbers no other field takes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from mailgate.api.idempotency import HEADER, MAX_KEY_LENGTH, parse_key
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.oauth import OAuthServer, follow_authorize
from tests.harness.postfix import PostfixServer
from tests.helpers import account_body
from tests.mail_factory import dated, message_with_attachments

FUZZ_FOLDER = "Fuzz"  # a folder of the run's own, next to INBOX and the special-use ones
WEBHOOK_URL = "https://1.1.1.1/mailgate-fuzz"  # public, so the SSRF guard lets it in; never called
RETURN_TO = "https://frontend.example/fuzz"
SENDER = "fuzz@example.test"  # what the run's accounts may send as
REDIRECT_URI = "http://testserver/v1/oauth2/callback"  # the TestClient's own address
# What schemathesis draws from, by dictionary name (see PARAMETERS in test_fuzz_api.py).
PLACEHOLDERS: dict[str, list[str | int]] = {
    "accounts": ["~imap", "~pop3", "~oauth"],
    "apps": ["~app", "~spare-app"],
    "return_tos": [RETURN_TO],
    "signin_states": ["~signin-state"],
    "signin_codes": ["~signin-code"],
    "folders": ["~inbox", "~folder"],
    "messages": ["~message", "~other-message"],
    "drafts": ["~draft"],
    "submissions": ["~submission"],
    "uploads": ["~upload"],
    "senders": [SENDER],
    "attachments": ["~attachment"],
    "webhooks": ["~webhook"],
    "keys": ["~key"],
    "cursors": ["~cursor"],
    "states": ["~state"],
    # a new account's connection settings: the test Dovecot, plain, a real user
    "hosts": ["~host"],
    "ports": [65143, 65110, 65025],
    "usernames": ["~username"],
    "passwords": ["~password"],
    "securities": ["none"],
    "urls": [WEBHOOK_URL],
}
MIN_MESSAGES = 3
# Bodies that succeed on the OAuth2 account (see World._steer), by the path below the account.
_STEERED: dict[str, dict[str, Any]] = {
    "PUT /v1/accounts/{account_id}/smtp": {"host": "~host", "port": 65025, "security": "none"},
    "POST /v1/accounts/{account_id}/send": {"to": [{"email": SENDER}], "text": "steered"},
    "POST /v1/accounts": {
        "protocol": "imap",
        "host": "~host",
        "port": 65143,
        "security": "none",
        "username": "~username",
        "password": "~password",
    },
    "POST /v1/oauth2/apps": {
        "provider": "google",
        "client_id": "fuzz",
        "redirect_uri": REDIRECT_URI,
        "return_to_allowed": [RETURN_TO],
    },
}


# Event streams run until the client goes away; every case asks them to end at once.
_STREAMS = {"GET /v1/events", "GET /v1/accounts/{account_id}/events"}


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
    oauth2: bool = False  # added with tokens of the test authorization server


@dataclass
class World:
    client: TestClient
    auth: dict[str, str]
    dovecot: DovecotServer
    oauth_server: OAuthServer
    oauth_dovecot: DovecotServer
    postfix: PostfixServer
    boxes: dict[str, Box] = field(default_factory=dict)
    webhook_id: str = ""
    key_id: str = ""  # a spare key, for the /v1/keys/{key_id} operations (never the run's own)
    apps: dict[str, str] = field(default_factory=dict)  # placeholder -> app id
    client_id: str = ""
    client_secret: str = ""
    submission_id: str = ""  # a queued submission of the OAuth2 account
    steered: Counter[str] = field(default_factory=Counter)
    # (operation label, status) -> how many calls answered it
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    # operation label -> how many calls did what it is for
    successes: Counter[str] = field(default_factory=Counter)

    @classmethod
    def make(
        cls,
        client: TestClient,
        auth: dict[str, str],
        dovecot: DovecotServer,
        oauth_server: OAuthServer,
        oauth_dovecot: DovecotServer,
        postfix: PostfixServer,
    ) -> World:
        world = cls(client, auth, dovecot, oauth_server, oauth_dovecot, postfix)
        world.client_id, world.client_secret = oauth_server.register_client([REDIRECT_URI])
        for protocol in ("imap", "pop3"):
            world.boxes["~" + protocol] = Box(protocol, dovecot.add_user())
        user = oauth_dovecot.add_user(f"fuzz-{secrets.token_hex(4)}@example.org")
        oauth_server.add_user(user.username, email=user.username)
        world.boxes["~oauth"] = Box("imap", user, oauth2=True)
        world._apps()
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
        self._steer(case)
        path = case.path_parameters or {}
        box = self.boxes.get(str(path.get("account_id")), self.boxes["~imap"])
        values = self._values(box)
        if case.path_parameters:
            quoted = {key: quote(str(value), safe="") for key, value in values.items()}
            case.path_parameters = _replace(case.path_parameters, quoted)
        if case.query:
            if "~signin-state" in case.query.values() or "~signin-code" in case.query.values():
                values = {**values, **self._signin()}
            case.query = _replace(case.query, values)
        if case.operation.label == "POST /v1/accounts" and isinstance(case.body, dict):
            # one way to log in, as the schema's prose says and JSON Schema cannot: else
            # nearly every generated account is refused before it reaches a mail server
            if "password" in case.body and "auth" in case.body:
                del case.body["auth"]
            elif "password" not in case.body and "auth" not in case.body:
                case.body["password"] = "~password"
        if case.operation.label.endswith("/smtp") and isinstance(case.body, dict):
            # the run's password user is no user of the Postfix: let the account's own
            # credentials (the OAuth2 token) log in
            for name in ("username", "password"):
                if case.body.get(name) in ("~username", "~password"):
                    del case.body[name]
        if isinstance(case.body, dict | list):
            case.body = _replace(case.body, values)
        _one_key_per_request(case)

    def _steer(self, case: Any) -> None:
        """Every fourth case of the operations that succeed only with a narrow body (and, for
        sending, the account that sends through the test Postfix) gets them, so each one
        succeeds in every run; the other cases stay as schemathesis made them. Every case of
        an event stream gets ``duration=0``, so that it ends."""
        label = case.operation.label
        if label in _STREAMS:
            case.query = {**(case.query or {}), "duration": 0}
        good = _STEERED.get(label)
        if good is None:
            return
        self.steered[label] += 1
        if self.steered[label] % 4 == 0:
            if case.path_parameters and "account_id" in case.path_parameters:
                case.path_parameters = {**case.path_parameters, "account_id": "~oauth"}
            case.body = dict(good)

    def record(self, case: Any, response: Any) -> None:
        """Count the answer; anything but a read may have changed the mailboxes. A success
        is a 2xx, or the sign-in callback's redirect with a new account."""
        label, status = case.operation.label, response.status_code
        self.answers[(label, status)] += 1
        landed = str(response.headers.get("location", "")) if status == 303 else ""
        if status < 300 or "account_id=" in landed:
            self.successes[label] += 1
        if case.method.upper() != "GET" or "/oauth2/" in label:
            for box in self.boxes.values():
                box.ids = None

    def succeeded(self, label: str) -> int:
        return self.successes[label]

    # -- the real things -----------------------------------------------------------------

    def _values(self, box: Box) -> dict[str | int, str | int]:
        if box.ids is None:
            self._apps()
            self._refresh(box)
            self._webhook()
            self._key()
        assert box.ids is not None
        imap_user = self.boxes["~imap"].user
        return {
            **box.ids,
            **{key: b.account_id for key, b in self.boxes.items()},
            "~webhook": self.webhook_id,
            "~key": self.key_id,
            **self.apps,
            "~host": self.dovecot.host,
            65143: self.dovecot.imap_port,
            65110: self.dovecot.pop3_port,
            65025: self.postfix.smtp_port,
            "~submission": self.submission_id,
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
            body = self._oauth2_account(box) if box.oauth2 else self._password_account(box)
            box.account_id = _expect(self._call("POST", "/v1/accounts", json=body), 201)["id"]
            base = f"/v1/accounts/{box.account_id}"
        listed = _expect(self._call("GET", base + "/folders"), 200)["items"]
        folders = {f["path"]: f["id"] for f in listed}
        if FUZZ_FOLDER not in folders:
            made = self._call("POST", base + "/folders", json={"name": FUZZ_FOLDER})
            folders[FUZZ_FOLDER] = _expect(made, 201)["id"]
        messages = self._inbox(base, folders["INBOX"])
        if len(messages) < MIN_MESSAGES or not any(m["has_attachments"] for m in messages):
            server = self.oauth_dovecot if box.oauth2 else self.dovecot
            server.deliver(box.user, [*dated(2), message_with_attachments()])
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
            "~draft": self._draft(base),
            "~upload": self._upload(base),
        }
        if box.oauth2:
            self.submission_id = self._sending(base)

    def _draft(self, base: str) -> str:
        """A draft to replace, delete or send; the account may send as SENDER (the fuzzer may
        have changed what it sends as)."""
        _expect(self._call("PATCH", base, json={"send_as": [SENDER]}), 200)
        body = {"to": [{"email": SENDER}], "subject": "fuzz draft", "text": "draft"}
        return str(_expect(self._call("POST", base + "/drafts", json=body), 201)["id"])

    def _upload(self, base: str) -> str:
        """An attachment upload to read, delete, or name in a send or a draft."""
        made = self._call("POST", base + "/uploads", files={"file": ("fuzz.txt", b"fuzz")})
        return str(_expect(made, 201)["id"])

    def _sending(self, base: str) -> str:
        """The OAuth2 account sends through the test Postfix (its token, over the plain port:
        no certificate to trust); a submission of it, for the submission's own operations.
        The worker does not run here: submissions stay queued."""
        smtp = {"host": self.postfix.host, "port": self.postfix.smtp_port, "security": "none"}
        _expect(self._call("PUT", base + "/smtp", json=smtp), 200)
        body = {"to": [{"email": SENDER}], "subject": "fuzz", "text": "queued"}
        return str(_expect(self._call("POST", base + "/send", json=body), 202)["id"])

    def _password_account(self, box: Box) -> dict[str, Any]:
        port = self.dovecot.imap_port if box.protocol == "imap" else self.dovecot.pop3_port
        return account_body(box.protocol, port, box.user)

    def _oauth2_account(self, box: Box) -> dict[str, Any]:
        """Bring your own token: tokens of the test authorization server for the app."""
        tokens = self.oauth_server.issue_tokens(box.user.username, self.client_id)
        auth = {
            "type": "oauth2",
            "app_id": self.apps["~app"],
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
        }
        return {"protocol": box.protocol, "username": box.user.username, "auth": auth}

    def _apps(self) -> None:
        """The app the OAuth2 account signs in with, and a spare one the run may delete."""
        body = self._app_body()
        for name in ("~app", "~spare-app"):
            known = self.apps.get(name) and self._call(
                "PATCH",  # as it was: the run may have changed it
                f"/v1/oauth2/apps/{self.apps[name]}",
                json={k: v for k, v in body.items() if k != "provider"},
            )
            if not known or known.status_code == 404:
                made = self._call("POST", "/v1/oauth2/apps", json=body)
                self.apps[name] = _expect(made, 201)["id"]

    def _app_body(self) -> dict[str, Any]:
        server = self.oauth_server
        return {
            "provider": "custom",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": REDIRECT_URI,
            "return_to_allowed": [RETURN_TO],
            "scopes": ["mail"],
            "authorization_url": server.authorize_url,
            "token_url": server.token_url,
            "userinfo_url": server.userinfo_url,
            "revocation_url": server.revocation_url,
            "imap": {"host": "127.0.0.1", "port": self.oauth_dovecot.imap_port, "security": "none"},
            "pop3": {"host": "127.0.0.1", "port": self.oauth_dovecot.pop3_port, "security": "none"},
        }

    def _signin(self) -> dict[str, str]:
        """A fresh sign-in, as far as the provider's redirect: its ``state`` and ``code``
        for the callback (each works once)."""
        user = self.boxes["~oauth"].user.username
        body = {"return_to": RETURN_TO, "login_hint": user}
        started = self._call("POST", f"/v1/oauth2/apps/{self.apps['~app']}/authorize", json=body)
        back = follow_authorize(_expect(started, 200)["authorization_url"])
        return {"~signin-state": back.params["state"], "~signin-code": back.params["code"]}

    def _inbox(self, base: str, inbox_id: str) -> list[dict[str, Any]]:
        listing = self._call("GET", base + "/messages", params={"folder_id": inbox_id})
        return list(_expect(listing, 200)["items"])

    def _webhook(self) -> None:
        known = self.webhook_id and self._call("GET", f"/v1/webhooks/{self.webhook_id}")
        if not known or known.status_code == 404:
            made = self._call("POST", "/v1/webhooks", json={"url": WEBHOOK_URL, "events": ["*"]})
            self.webhook_id = _expect(made, 201)["id"]

    def _key(self) -> None:
        known = self.key_id and self._call("GET", f"/v1/keys/{self.key_id}")
        if not known or known.status_code == 404:
            made = self._call("POST", "/v1/keys", json={"name": "spare", "scopes": ["read"]})
            self.key_id = _expect(made, 201)["id"]


def _one_key_per_request(case: Any) -> None:
    """Schemathesis draws `Idempotency-Key` from few values ("0" in most cases), so unrelated
    cases would share a key and all but the first answer 409 idempotency-conflict. A
    well-formed key gets the digest of the request (as resolved) at its end: the same request
    again keeps its key (and is replayed), another one never meets it. A malformed key stays
    as drawn (400 invalid-idempotency-key)."""
    key = (case.headers or {}).get(HEADER)
    if not isinstance(key, str) or not key.isascii() or parse_key(key.encode()) is None:
        return
    request = [case.method, case.path, case.path_parameters, case.query, case.body]
    digest = hashlib.sha256(json.dumps(request, default=repr).encode()).hexdigest()[:16]
    kept = key[: MAX_KEY_LENGTH - len(digest) - 1]
    case.headers = {**case.headers, HEADER: f"{kept}-{digest}"}


def _replace(value: Any, values: dict[Any, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _replace(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, values) for item in value]
    if isinstance(value, str | int) and not isinstance(value, bool):
        return values.get(value, value)
    return value
