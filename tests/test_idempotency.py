"""`Idempotency-Key` on every POST (api.idempotency), against the real app on SQLite and
PostgreSQL, real Dovecot mailboxes (behind the fault-injection proxy where a mailbox must
stall or fail), a real Postfix for sending, and uvicorn where the body must stream in."""

from __future__ import annotations

import secrets
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import PasswordBox, hash_api_key
from mailgate.gateway.idempotency import Claimed, Completed, IdempotencyRecords, StoredResponse
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from mailgate.store.models import IdempotencyRecord, Upload
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer, MailUser
from tests.harness.postfix import PostfixServer
from tests.harness.proxy import FaultProxy
from tests.harness.serve import served
from tests.helpers import account_body, assert_problem
from tests.test_imap_mail import Mailbox
from tests.test_sending import person, sending_account

WEBHOOK = {"url": "https://8.8.8.8/hook", "events": ["message.created"]}
REPLAYED = "Idempotent-Replayed"


def keyed(auth: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**auth, "Idempotency-Key": key or str(uuid.uuid4())}


def assert_replayed(first: httpx.Response, again: httpx.Response) -> None:
    """``again`` is ``first`` answered once more: status, body, content type; marked."""
    assert again.status_code == first.status_code, again.text
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers.get("location") == first.headers.get("location")
    assert again.headers[REPLAYED] == "true"
    assert REPLAYED not in first.headers


def records(gateway: Gateway) -> list[IdempotencyRecord]:
    with Session(gateway.engine) as session:
        return list(session.exec(select(IdempotencyRecord)).all())


def age_records(gateway: Gateway, by: timedelta) -> None:
    """Every record was made ``by`` earlier than it was."""
    with gateway.engine.begin() as connection:
        for record in connection.execute(sa.select(IdempotencyRecord.__table__)).mappings():  # type: ignore[attr-defined]
            connection.execute(
                sa.update(IdempotencyRecord.__table__)  # type: ignore[attr-defined]
                .where(
                    col(IdempotencyRecord.scope) == record["scope"],
                    col(IdempotencyRecord.idem_key) == record["idem_key"],
                )
                .values(created_at=record["created_at"] - by)
            )


def webhook_ids(client: TestClient, auth: dict[str, str]) -> list[str]:
    listed = client.get("/v1/webhooks", headers=auth)
    assert listed.status_code == 200, listed.text
    return [item["id"] for item in listed.json()["items"]]


def account_ids(client: TestClient, auth: dict[str, str]) -> list[str]:
    listed = client.get("/v1/accounts", headers=auth)
    assert listed.status_code == 200, listed.text
    return [item["id"] for item in listed.json()["items"]]


# --- webhooks: a plain POST ---------------------------------------------------------------------


def test_a_retried_create_answers_the_first_answer_and_creates_once(
    client: TestClient, auth: dict[str, str], gateway: Gateway
) -> None:
    headers = keyed(auth)
    first = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert_replayed(first, again)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["secret"] == first.json()["secret"]
    assert webhook_ids(client, auth) == [first.json()["id"]]
    # the kept answer holds the secret: encrypted at rest, as the webhook's own copy
    [record] = records(gateway)
    assert record.body and first.json()["secret"].encode() not in record.body
    # a new key is a new request
    other = client.post("/v1/webhooks", json=WEBHOOK, headers=keyed(auth))
    assert other.status_code == 201 and REPLAYED not in other.headers
    assert sorted(webhook_ids(client, auth)) == sorted([first.json()["id"], other.json()["id"]])


def test_another_request_under_the_key_is_a_conflict_and_changes_nothing(
    client: TestClient, auth: dict[str, str]
) -> None:
    headers = keyed(auth)
    first = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert first.status_code == 201, first.text
    changed = {**WEBHOOK, "url": "https://8.8.4.4/other"}
    problem = assert_problem(
        client.post("/v1/webhooks", json=changed, headers=headers), 409, "idempotency-conflict"
    )
    assert "another request" in str(problem["detail"])
    # the same body elsewhere (another path, another query) is another request too
    assert_problem(
        client.post("/v1/webhooks?x=1", json=WEBHOOK, headers=headers), 409, "idempotency-conflict"
    )
    assert_problem(
        client.post("/v1/oauth2/apps", json=WEBHOOK, headers=headers), 409, "idempotency-conflict"
    )
    webhook = client.get(f"/v1/webhooks/{first.json()['id']}", headers=auth).json()
    assert webhook["url"] == WEBHOOK["url"]
    assert webhook_ids(client, auth) == [first.json()["id"]]
    # and the original request still replays
    assert_replayed(first, client.post("/v1/webhooks", json=WEBHOOK, headers=headers))


def test_keys_belong_to_one_api_key(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str], gateway: Gateway
) -> None:
    key = "shared-key-1"
    mine = client.post("/v1/webhooks", json=WEBHOOK, headers=keyed(auth, key))
    theirs = client.post("/v1/webhooks", json=WEBHOOK, headers=keyed(other_auth, key))
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert webhook_ids(client, other_auth) == [theirs.json()["id"]]
    # another key of the same tenant is another caller too
    colleague = {"Authorization": f"Bearer {issue_api_key(gateway.engine, 'tenant-a').key}"}
    again = client.post("/v1/webhooks", json=WEBHOOK, headers=keyed(colleague, key))
    assert again.status_code == 201 and REPLAYED not in again.headers
    assert len(webhook_ids(client, auth)) == 2
    # the records name the callers by the hash of their key, never the key
    scopes = {record.scope for record in records(gateway)}
    bearer = auth["Authorization"].removeprefix("Bearer ")
    assert hash_api_key(bearer) in scopes and bearer not in scopes


def test_an_answer_older_than_a_day_is_forgotten(
    client: TestClient, auth: dict[str, str], gateway: Gateway
) -> None:
    headers = keyed(auth)
    first = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert first.status_code == 201
    age_records(gateway, timedelta(hours=23, minutes=59))
    assert_replayed(first, client.post("/v1/webhooks", json=WEBHOOK, headers=headers))
    age_records(gateway, timedelta(minutes=2))  # now a day and a minute old
    anew = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert anew.status_code == 201 and REPLAYED not in anew.headers
    assert anew.json()["id"] != first.json()["id"]
    assert len(webhook_ids(client, auth)) == 2
    assert_replayed(anew, client.post("/v1/webhooks", json=WEBHOOK, headers=headers))


def test_expired_records_are_removed(
    client: TestClient, auth: dict[str, str], gateway: Gateway
) -> None:
    """Rows older than a day go on a later claim (at most once a minute per process)."""
    for _ in range(3):
        assert client.post("/v1/webhooks", json=WEBHOOK, headers=keyed(auth)).status_code == 201
    age_records(gateway, timedelta(days=2))
    fresh = IdempotencyRecords(
        gateway.engine, gateway.passwords
    )  # a process that has not cleaned up yet
    scope = hash_api_key(auth["Authorization"].removeprefix("Bearer "))
    assert isinstance(fresh.claim(scope, "another"), Claimed)
    assert [record.idem_key for record in records(gateway)] == ["another"]


def test_an_answer_kept_under_a_retired_secret_key_runs_again(gateway: Gateway) -> None:
    """Kept answers are encrypted with the secret keys; one that no longer decrypts (its key
    was rotated out) is as good as gone."""
    before = IdempotencyRecords(gateway.engine, gateway.passwords)
    claimed = before.claim("scope", "key")
    assert isinstance(claimed, Claimed)
    answer = StoredResponse(201, "application/json", None, b'{"id": "x"}')
    before.complete("scope", "key", claimed.token, "f" * 64, answer)
    assert before.claim("scope", "key") == Completed("f" * 64, answer)
    rotated = PasswordBox([Fernet.generate_key()])
    assert isinstance(IdempotencyRecords(gateway.engine, rotated).claim("scope", "key"), Claimed)


def test_a_validation_error_is_kept_like_any_answer_below_500(
    client: TestClient, auth: dict[str, str]
) -> None:
    """What was built: every answer under 500 is kept (but 401, 403, 405, 429), refusals of
    the body too. A key is one request: a corrected body needs a new key."""
    headers = keyed(auth)
    bad = {"url": "not a url", "events": ["message.created"]}
    first = client.post("/v1/webhooks", json=bad, headers=headers)
    assert_problem(first, 422, "validation-error")
    assert_replayed(first, client.post("/v1/webhooks", json=bad, headers=headers))
    assert_problem(
        client.post("/v1/webhooks", json=WEBHOOK, headers=headers), 409, "idempotency-conflict"
    )
    fixed = client.post("/v1/webhooks", json=WEBHOOK, headers=keyed(auth))
    assert fixed.status_code == 201
    # a body that is no JSON: 400, kept as well
    broken = {**headers, "Idempotency-Key": "broken-json", "Content-Type": "application/json"}
    first = client.post("/v1/webhooks", content=b"{nope", headers=broken)
    assert_problem(first, 400, "invalid-json")
    assert_replayed(first, client.post("/v1/webhooks", content=b"{nope", headers=broken))


def test_malformed_keys_are_refused(
    client: TestClient, auth: dict[str, str], gateway: Gateway
) -> None:
    for key in ["", " ", "x" * 256, "tab\there", "caf\xe9", " padded", "padded "]:
        answer = client.post(
            "/v1/webhooks",
            json=WEBHOOK,
            headers={**auth, "Idempotency-Key": key.encode("latin-1")},  # type: ignore[dict-item]
        )
        assert_problem(answer, 400, "invalid-idempotency-key")
    two = httpx.Headers([*auth.items(), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
    assert_problem(
        client.post("/v1/webhooks", json=WEBHOOK, headers=two), 400, "invalid-idempotency-key"
    )
    longest = "~" + "a b" * 84 + "!"  # 254 characters with spaces inside
    for key in ["x", "!", longest, longest + "z"]:
        answer = client.post("/v1/webhooks", json=WEBHOOK, headers=keyed(auth, key))
        assert answer.status_code == 201, (key, answer.text)
    assert webhook_ids(client, auth) and len(webhook_ids(client, auth)) == 4
    assert records(gateway) and len(records(gateway)) == 4


def test_without_an_api_key_or_on_other_methods_the_header_changes_nothing(
    client: TestClient, auth: dict[str, str], gateway: Gateway
) -> None:
    for key in ["some-key", ""]:  # not even a malformed key is looked at
        answer = client.post("/v1/webhooks", json=WEBHOOK, headers={"Idempotency-Key": key})
        assert_problem(answer, 401, "unauthorized")
        basic = {"Authorization": "Basic dXNlcjpwYXNz", "Idempotency-Key": key}
        assert_problem(
            client.post("/v1/webhooks", json=WEBHOOK, headers=basic), 401, "unauthorized"
        )
    assert records(gateway) == []
    # a key that is no API key: the claim is let go with the 401
    wrong = {"Authorization": "Bearer mg_wrong", "Idempotency-Key": "k"}
    assert_problem(client.post("/v1/webhooks", json=WEBHOOK, headers=wrong), 401, "unauthorized")
    assert records(gateway) == []
    made = client.post("/v1/webhooks", json=WEBHOOK, headers=auth).json()
    bad_key = {**auth, "Idempotency-Key": ""}
    path = f"/v1/webhooks/{made['id']}"
    for _ in range(2):
        changed = client.patch(path, json={"enabled": False}, headers=bad_key)
        assert changed.status_code == 200 and REPLAYED not in changed.headers
        assert client.get(path, headers=bad_key).status_code == 200
    assert client.delete(path, headers=bad_key).status_code == 204
    assert records(gateway) == []


def test_a_deleted_or_insufficient_key_gets_no_replay(
    client: TestClient, auth: dict[str, str], gateway: Gateway
) -> None:
    """A replay answers what the key was given, but only while the key lives: a deleted key
    is refused, and a key without the scope was never answered anything worth keeping."""
    made = client.post("/v1/keys", json={"name": "ops", "scopes": ["admin"]}, headers=auth)
    ops = {"Authorization": f"Bearer {made.json()['key']}"}
    headers = keyed(ops)
    first = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert first.status_code == 201
    assert_replayed(first, client.post("/v1/webhooks", json=WEBHOOK, headers=headers))
    assert client.delete(f"/v1/keys/{made.json()['id']}", headers=auth).status_code == 204
    gone = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert_problem(gone, 401, "unauthorized")
    assert REPLAYED not in gone.headers
    reader = client.post("/v1/keys", json={"name": "r", "scopes": ["read"]}, headers=auth)
    read_only = keyed({"Authorization": f"Bearer {reader.json()['key']}"})
    for _ in range(2):
        refused = client.post("/v1/webhooks", json=WEBHOOK, headers=read_only)
        assert_problem(refused, 403, "insufficient-scope")
        assert REPLAYED not in refused.headers
    assert webhook_ids(client, auth) == [first.json()["id"]]


def test_a_method_not_allowed_is_not_kept(client: TestClient, auth: dict[str, str]) -> None:
    headers = keyed(auth)
    for _ in range(2):
        answer = client.post("/v1/accounts/acc_x/folders/f_x", json={}, headers=headers)
        assert_problem(answer, 405, "method-not-allowed")
        assert REPLAYED not in answer.headers and "allow" in answer.headers


def test_cors_lets_browsers_send_the_key_and_read_the_replay(
    tmp_path: Path, database_url: str
) -> None:
    origin = "https://app.example"
    gw = Gateway.from_settings(make_settings(tmp_path, database_url, cors_origins=[origin]))
    upgrade(gw.engine)
    try:
        with TestClient(create_app(gw)) as client:
            preflight = client.options(
                "/v1/webhooks",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, idempotency-key",
                },
            )
            assert preflight.status_code == 200
            assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
            headers = {
                **keyed({"Authorization": f"Bearer {issue_api_key(gw.engine, 't').key}"}),
                "Origin": origin,
            }
            client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
            again = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
            assert again.headers[REPLAYED] == "true"
            assert again.headers["access-control-allow-origin"] == origin
            exposed = again.headers["access-control-expose-headers"].lower()
            assert REPLAYED.lower() in exposed
    finally:
        gw.close()


# --- accounts: a mailbox that stalls or fails --------------------------------------------------


@pytest.fixture
def patient(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app with mail-server timeouts long enough to hold a request in flight."""
    gw = Gateway.from_settings(
        make_settings(tmp_path, database_url, connect_timeout=20.0, command_timeout=20.0)
    )
    upgrade(gw.engine)
    auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'patient').key}"}
    with TestClient(create_app(gw), raise_server_exceptions=False) as client:
        yield client, auth
    gw.close()


@pytest.mark.timeout(60)
def test_while_the_first_request_runs_the_key_is_in_progress(
    patient: tuple[TestClient, dict[str, str]], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    client, auth = patient
    headers = keyed(auth)
    with FaultProxy((dovecot.host, dovecot.imap_port)) as proxy, ThreadPoolExecutor(1) as pool:
        body = account_body("imap", proxy.port, mail_user)
        proxy.stall()  # the mail server says nothing: the first request waits for it
        first = pool.submit(client.post, "/v1/accounts", json=body, headers=headers)
        while proxy.connections == 0:  # it claimed the key and is talking to the server
            assert not first.done(), first.result().text
            time.sleep(0.01)
        for again in (body, {**body, "name": "another"}):
            busy = client.post("/v1/accounts", json=again, headers=headers)
            problem = assert_problem(busy, 409, "idempotency-conflict")
            assert "in progress" in str(problem["detail"])
            assert busy.headers["retry-after"] == "1"
        assert not first.done()
        proxy.resume()
        made = first.result(timeout=30)
        assert made.status_code == 201, made.text
        connections = proxy.connections
        assert_replayed(made, client.post("/v1/accounts", json=body, headers=headers))
        assert proxy.connections == connections  # the replay did not log in again
    assert account_ids(client, auth) == [made.json()["id"]]


def test_a_server_error_is_not_kept_and_the_retry_executes(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    headers = keyed(auth)
    with FaultProxy((dovecot.host, dovecot.imap_port)) as proxy:
        body = account_body("imap", proxy.port, mail_user)
        proxy.cut_after(0)  # the server hangs up on every connection
        for _ in range(2):
            failed = client.post("/v1/accounts", json=body, headers=headers)
            assert failed.status_code == 502, failed.text
            assert failed.json()["type"].startswith("mailbox-")
            assert REPLAYED not in failed.headers
        assert proxy.connections == 2  # both executed
        proxy.reset()  # it is back
        made = client.post("/v1/accounts", json=body, headers=headers)
        assert made.status_code == 201 and REPLAYED not in made.headers, made.text
        connections = proxy.connections
        assert_replayed(made, client.post("/v1/accounts", json=body, headers=headers))
        assert proxy.connections == connections
    assert account_ids(client, auth) == [made.json()["id"]]


def test_a_claim_of_a_process_that_died_is_taken_over(
    client: TestClient, auth: dict[str, str], gateway: Gateway
) -> None:
    """A process that claimed a key and died never releases it: after ten minutes the claim
    is stale and the next request executes."""
    scope = hash_api_key(auth["Authorization"].removeprefix("Bearer "))
    assert isinstance(
        IdempotencyRecords(gateway.engine, gateway.passwords).claim(scope, "orphan"), Claimed
    )
    headers = keyed(auth, "orphan")
    busy = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert_problem(busy, 409, "idempotency-conflict")
    age_records(gateway, timedelta(minutes=9))
    assert_problem(
        client.post("/v1/webhooks", json=WEBHOOK, headers=headers), 409, "idempotency-conflict"
    )
    age_records(gateway, timedelta(minutes=2))
    made = client.post("/v1/webhooks", json=WEBHOOK, headers=headers)
    assert made.status_code == 201 and REPLAYED not in made.headers
    assert_replayed(made, client.post("/v1/webhooks", json=WEBHOOK, headers=headers))
    assert len(webhook_ids(client, auth)) == 1


# --- sending ----------------------------------------------------------------------------------


@pytest.fixture
def alice(
    client: TestClient,
    auth: dict[str, str],
    oauth_dovecot: DovecotServer,
    postfix: PostfixServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Mailbox:
    """An account that sends through the test Postfix (STARTTLS: the test CA is trusted)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(oauth_dovecot.ca_file))
    user = person(oauth_dovecot, postfix, "alice")
    return sending_account(client, auth, oauth_dovecot, postfix, user)


def test_a_retried_send_queues_one_submission(
    alice: Mailbox, gateway: Gateway, postfix: PostfixServer, oauth_dovecot: DovecotServer
) -> None:
    bob = person(oauth_dovecot, postfix, "bob")
    body = {"to": [{"email": bob.username}], "subject": "once", "text": "only once"}
    headers = keyed(alice.auth)
    first = alice.client.post(alice.base + "/send", json=body, headers=headers)
    assert first.status_code == 202, first.text
    again = alice.client.post(alice.base + "/send", json=body, headers=headers)
    assert_replayed(first, again)
    assert_problem(
        alice.client.post(alice.base + "/send", json={**body, "text": "twice?"}, headers=headers),
        409,
        "idempotency-conflict",
    )
    # another API key of the tenant: the submission's own key (per account, for good) holds
    colleague = {"Authorization": f"Bearer {issue_api_key(gateway.engine, 'tenant-a').key}"}
    same = alice.client.post(alice.base + "/send", json=body, headers={**headers, **colleague})
    assert same.status_code == 202 and REPLAYED not in same.headers
    assert same.json()["id"] == first.json()["id"]
    submissions = alice.get("/submissions")["items"]
    assert [s["id"] for s in submissions] == [first.json()["id"]]


# --- uploads over a real server: the body streams in --------------------------------------------


def multipart(content: bytes, filename: str) -> tuple[bytes, dict[str, str]]:
    """One `file` part with a fixed boundary: a retry sends the same bytes."""
    boundary = "mailgate-idempotency-test"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, Gateway]]:
    gw = Gateway.from_settings(make_settings(tmp_path, database_url))
    upgrade(gw.engine)
    with served(create_app(gw)) as base:
        yield base, gw
    gw.close()


@pytest.mark.timeout(60)
def test_a_retried_upload_answers_the_same_upload(
    server: tuple[str, Gateway], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    base, gw = server
    auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'uploader').key}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        made = http.post(
            "/v1/accounts", json=account_body("imap", dovecot.imap_port, mail_user), headers=auth
        )
        assert made.status_code == 201, made.text
        uploads = f"/v1/accounts/{made.json()['id']}/uploads"
        content = secrets.token_bytes(5 * 1024 * 1024)
        body, content_type = multipart(content, "report.bin")
        headers = {**keyed(auth), **content_type}
        first = http.post(uploads, content=chunks(body), headers=headers)
        assert first.status_code == 201, first.text
        assert first.json()["size"] == len(content)
        tracemalloc.start()  # this process: the client and the server
        try:
            again = http.post(uploads, content=chunks(body, 10_000), headers=headers)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert_replayed(first, again)  # its body came in other chunks
        assert peak < len(content) / 2  # hashed as it came in, never held whole (~1 MB)
        changed, _ = multipart(content[:-1] + b"!", "report.bin")
        assert_problem(
            http.post(uploads, content=chunks(changed), headers=headers),
            409,
            "idempotency-conflict",
        )
        # only the first one is stored
        with Session(gw.engine) as session:
            assert session.exec(select(func.count()).select_from(Upload)).one() == 1
        # a body over the limit is refused on the way in, on a replay as well
        too_big, _ = multipart(b"x" * (gw.settings.max_upload_bytes + 1024 * 1024), "big.bin")
        refused = http.post(uploads, content=chunks(too_big), headers=headers)
        assert_problem(refused, 413, "payload-too-large")


@pytest.mark.timeout(60)
def test_a_body_the_app_did_not_read_is_read_before_keeping_the_answer(
    server: tuple[str, Gateway], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    """An upload to an account that is not the caller's answers 404 before a byte of the file
    is read: a small body is read to its end and the 404 kept; a body too big to read through
    (over 1 MiB) leaves the answer unkept, and a retry executes."""
    base, gw = server
    auth = {"Authorization": f"Bearer {issue_api_key(gw.engine, 'reader').key}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        uploads = "/v1/accounts/acc_not_mine/uploads"
        small, content_type = multipart(b"small file", "a.txt")
        headers = {**keyed(auth), **content_type}
        first = http.post(uploads, content=chunks(small), headers=headers)
        assert_problem(first, 404, "not-found")
        assert_replayed(first, http.post(uploads, content=small, headers=headers))
        big, _ = multipart(secrets.token_bytes(3 * 1024 * 1024), "b.bin")
        headers = {**keyed(auth), **content_type}
        for _ in range(2):
            answer = http.post(uploads, content=chunks(big), headers=headers)
            assert_problem(answer, 404, "not-found")
            assert REPLAYED not in answer.headers
