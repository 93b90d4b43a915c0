"""What every client meets first: auth, problem+json errors, request ids, CORS, health."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.testclient import TestClient

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.migrate import upgrade
from tests.conftest import make_settings
from tests.helpers import assert_problem


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_readiness_fails_when_database_is_gone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    gw = Gateway.from_settings(settings)
    with TestClient(create_app(gw)) as client:
        assert_problem(client.get("/readyz"), 503, "not-ready")


def test_readiness_waits_for_the_schema_of_this_version(tmp_path: Path, database_url: str) -> None:
    """While another process migrates (or nobody has yet), the database answers but is not
    at this version's schema: not ready, and it says why."""
    gw = Gateway.from_settings(make_settings(tmp_path, database_url))
    try:
        with TestClient(create_app(gw)) as client:
            never = assert_problem(client.get("/readyz"), 503, "not-ready")
            assert "at nothing" in str(never["detail"])
            upgrade(gw.engine, "0016")
            behind = assert_problem(client.get("/readyz"), 503, "not-ready")
            assert "at 0016" in str(behind["detail"])
            upgrade(gw.engine)
            assert client.get("/readyz").json() == {"status": "ok"}
    finally:
        gw.close()


def test_missing_and_wrong_api_key_answer_401(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/accounts"), 401, "unauthorized")
    assert "Bearer" in str(body["detail"])
    response = client.get("/v1/accounts", headers={"Authorization": "Bearer mg_wrong"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    basic = client.get("/v1/accounts", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(basic, 401, "unauthorized")


def test_a_valid_key_is_accepted(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/v1/accounts", headers=auth)
    assert response.status_code == 200
    assert response.json() == {"items": []}


def test_unknown_route_and_wrong_method(client: TestClient, auth: dict[str, str]) -> None:
    assert_problem(client.get("/v1/nothing-here", headers=auth), 404, "not-found")
    assert_problem(client.put("/v1/accounts", headers=auth), 405, "method-not-allowed")


def test_wrong_method_names_every_method_of_the_path(
    client: TestClient, auth: dict[str, str]
) -> None:
    """`Allow` lists what the path answers to (RFC 9110), not only the method of the first
    route that matched it (schemathesis: `Allow: POST` on /v1/accounts)."""
    expected = {
        "/v1/accounts": "GET, POST",
        "/v1/accounts/acc_x": "DELETE, GET, PATCH",
        "/v1/accounts/acc_x/folders/fld_x": "DELETE, PATCH",
        "/v1/accounts/acc_x/messages/msg_x": "DELETE, GET, PATCH",
        "/v1/webhooks/wh_x/secret": "GET",
        "/healthz": "GET",
    }
    for path, allow in expected.items():
        for method in ("PUT", "OPTIONS"):
            response = client.request(method, path, headers=auth)
            assert_problem(response, 405, "method-not-allowed")
            assert response.headers["allow"] == allow, (method, path)


def test_request_id_is_on_every_response(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert generated.startswith("req_")
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    hostile = client.get("/healthz", headers={"X-Request-ID": "bad id\twith tab"})
    assert hostile.headers["x-request-id"].startswith("req_")
    problem = client.get("/v1/accounts", headers={"X-Request-ID": "trace-9"})
    assert problem.json()["request_id"] == "trace-9"


def test_unexpected_exception_is_a_problem_without_traceback(gateway: Gateway) -> None:
    app = create_app(gateway)
    boom = APIRouter()

    @boom.get("/boom")
    def explode() -> None:
        raise RuntimeError("secret internals")

    app.include_router(boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    body = assert_problem(response, 500, "internal-error")
    assert "secret internals" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


def test_invalid_json_and_non_json_bodies(client: TestClient, auth: dict[str, str]) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    for body in (
        b"{not json",
        b'{"host": "\xff\xfe"}',  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,  # nested beyond any parser's depth
    ):
        answer = client.post("/v1/accounts", content=body, headers=headers)
        assert_problem(answer, 400, "invalid-json")
    text = client.post(
        "/v1/accounts", content=b"hello", headers={**auth, "Content-Type": "text/plain"}
    )
    assert_problem(text, 415, "unsupported-media-type")
    # a body that says it is JSON under a suffix (RFC 6839) is read as JSON
    suffixed = {**auth, "Content-Type": "application/merge-patch+json"}
    assert_problem(client.post("/v1/accounts", content=b"{", headers=suffixed), 400, "invalid-json")


def test_body_over_the_limit_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    big = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = client.post(
        "/v1/accounts", content=big, headers={**auth, "Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")
    assert client.get("/v1/accounts", headers=auth).json() == {"items": []}


def test_streamed_body_over_the_limit_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(20):
            yield b" " * 100_000

    response = client.post(
        "/v1/accounts", content=chunks(), headers={**auth, "Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.options(
        "/v1/accounts",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_configured_origins_only(tmp_path: Path, sqlite_url: str) -> None:
    from mailgate.store.migrate import upgrade

    settings = make_settings(tmp_path, sqlite_url, cors_origins=["https://app.example"])
    gw = Gateway.from_settings(settings)
    upgrade(gw.engine)
    key = issue_api_key(gw.engine, "t").key
    with TestClient(create_app(gw)) as client:
        preflight = client.options(
            "/v1/accounts",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        simple = client.get(
            "/v1/accounts",
            headers={"Origin": "https://app.example", "Authorization": f"Bearer {key}"},
        )
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        evil = client.get("/v1/accounts", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
    gw.close()
