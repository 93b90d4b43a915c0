"""The committed spec is the app's spec, and every operation documents itself."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.testclient import TestClient

from mailgate.api import problems
from mailgate.api.app import create_app
from mailgate.api.document import OPERATION_IDS
from mailgate.api.openapi import SPEC_PATH, openapi_json, openapi_spec
from mailgate.api.problems import PROBLEM_TYPES
from mailgate.api.scopes import PUBLIC as SCOPE_FREE
from mailgate.api.scopes import REQUIRED
from mailgate.domain.errors import MailgateError
from mailgate.domain.webhooks import EVENT_TYPES
from mailgate.gateway.context import Gateway
from mailgate.gateway.settings import Settings
from tests.helpers import assert_problem

MAILBOX_PATHS = ("/v1/accounts/{account_id}/folders", "/v1/accounts/{account_id}/messages")


def test_committed_spec_is_current() -> None:
    assert SPEC_PATH.read_text() == openapi_json(), (
        "openapi/openapi.json is stale: run `.venv/bin/mailgate openapi > openapi/openapi.json`"
    )


# What a browser reaches without an API key: the provider sends it back here.
PUBLIC = {"/v1/oauth2/callback"}


def test_every_operation_has_summary_models_and_errors() -> None:
    spec = openapi_spec()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), f"{where} has no summary"
            responses = operation["responses"]
            ok = [code for code in responses if code[0] in "23"]
            assert ok, f"{where} documents no success answer"
            for code in ok:
                if code not in ("204", "303", "304"):  # no body: nothing, redirect, not modified
                    content = responses[code]["content"]
                    assert all(media.get("schema") for media in content.values()), where
            errors = [code for code in responses if code[0] in "45"]
            assert errors, f"{where} documents no error answer"
            for code in errors:
                content = responses[code]["content"]
                assert list(content) == ["application/problem+json"], f"{where} {code}"
            if path.startswith("/v1/") and path not in PUBLIC:
                assert "401" in responses, f"{where} does not document 401"
    assert json.loads(openapi_json()) == spec


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in openapi_spec()["paths"].items()
        for method, operation in item.items()
    ]


def test_every_body_documents_broken_and_oversized_json() -> None:
    """Each operation that takes a JSON body answers what a client sees when the body is not
    JSON (400), too big (413) or of another media type (415), and documents them
    (schemathesis found an undocumented 400 on POST .../folders)."""
    client = TestClient(create_app(Gateway.offline()), raise_server_exceptions=False)
    headers = {"Content-Type": "application/json"}
    too_big = b"[" * (Settings().max_body_bytes + 1)
    for method, path, operation in _operations():
        if "requestBody" not in operation:
            continue
        if "application/json" not in operation["requestBody"]["content"]:  # an upload
            assert {"400", "413", "415"} <= set(operation["responses"]), f"{method} {path}"
            continue
        url = path.replace("{", "x").replace("}", "")
        assert_problem(
            client.request(method, url, content=b"{no", headers=headers), 400, "invalid-json"
        )
        assert_problem(
            client.request(method, url, content=too_big, headers=headers), 413, "payload-too-large"
        )
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = client.request(method, url, content=b"a=1", headers=form)
        assert_problem(answer, 415, "unsupported-media-type")
        assert {"400", "413", "415"} <= set(operation["responses"]), f"{method.upper()} {path}"


def test_every_mailbox_operation_documents_the_mailbox_problems() -> None:
    """What reaches a mail server documents mailbox-unreachable (502), mailbox-busy (503) and
    mailbox-timeout (504)."""
    for method, path, operation in _operations():
        talks_to_mailbox = path.startswith(MAILBOX_PATHS) or (method, path) in (
            ("post", "/v1/accounts"),
            ("patch", "/v1/accounts/{account_id}"),
        )
        if talks_to_mailbox:
            missing = {"502", "503", "504"} - set(operation["responses"])
            assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"


def test_operation_ids_are_short_stable_and_set_in_one_place() -> None:
    """Generators name methods after operationId: each is the table's camelCase id (no
    FastAPI default such as `get_raw_v1_accounts__account_id__...`), unique, and the table
    has no entry for a route that is gone."""
    ids = [operation["operationId"] for _m, _p, operation in _operations()]
    assert sorted(ids) == sorted(OPERATION_IDS.values())
    assert len(set(ids)) == len(ids)
    for id_ in ids:
        assert re.fullmatch(r"[a-z][A-Za-z0-9]{2,29}", id_), id_
    paths = {(m, p): o["operationId"] for m, p, o in _operations()}
    assert paths["get", "/v1/accounts/{account_id}/messages"] == "listMessages"
    assert paths["get", "/v1/accounts/{account_id}/messages/{message_id}"] == "getMessage"
    assert paths["get", "/v1/accounts/{account_id}/messages/{message_id}/raw"] == "getMessageRaw"
    assert paths["post", "/v1/webhooks"] == "createWebhook"


def test_info_servers_tags_and_public_routes() -> None:
    spec = openapi_spec()
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["description"]
    assert spec["info"]["license"] == {"name": "Apache-2.0", "identifier": "Apache-2.0"}
    assert spec["servers"] and all(server["url"] for server in spec["servers"])
    used = {tag for _m, _p, operation in _operations() for tag in operation["tags"]}
    described = {tag["name"]: tag.get("description") for tag in spec["tags"]}
    assert used == set(described) and all(described.values())
    for method, path, operation in _operations():
        if path.startswith("/v1/") and path not in PUBLIC:
            scopes = [scope for option in operation["security"] for scope in option["HTTPBearer"]]
            assert scopes and set(scopes) <= {"read", "write", "send", "admin"}, f"{method} {path}"
            assert {"403", "429"} <= set(operation["responses"]), f"{method} {path}"
        else:  # health and the OAuth2 callback: no key, said so explicitly
            assert operation["security"] == [], f"{method} {path}"


def test_every_operation_behind_a_key_has_its_scope_in_one_table() -> None:
    """api/scopes.py names the scope of each operation, and nothing else: a route missing
    from it would be refused to every key."""
    ids = {operation["operationId"] for _m, _p, operation in _operations()}
    assert set(REQUIRED) == ids - SCOPE_FREE
    assert ids >= SCOPE_FREE


NAMED_ENUMS = {
    "AccountState",
    "AuthType",
    "EventPattern",
    "EventType",
    "FolderRole",
    "MailProtocol",
    "OAuth2Provider",
    "ProblemType",
    "Scope",
    "Security",
    "SubmissionStatus",
    "SyncState",
}


def _enums(node: Any, where: str) -> list[str]:
    if isinstance(node, dict):
        found = [where] if "enum" in node else []
        return found + [e for k, v in node.items() for e in _enums(v, f"{where}/{k}")]
    if isinstance(node, list):
        return [e for i, v in enumerate(node) for e in _enums(v, f"{where}/{i}")]
    return []


def test_enums_are_named_components() -> None:
    """Generators make one type per named enum; an inline enum becomes a new class at each
    use (four classes for the event types, before)."""
    spec = openapi_spec()
    schemas = spec["components"]["schemas"]
    assert sorted(_enums(spec, "")) == sorted(f"/components/schemas/{n}" for n in NAMED_ENUMS)
    assert schemas["Problem"]["properties"]["type"]["$ref"].endswith("/ProblemType")
    assert schemas["Folder"]["properties"]["role"]["anyOf"][0]["$ref"].endswith("/FolderRole")


def test_problem_types_are_the_ones_the_code_answers() -> None:
    """`ProblemType` lists every type an answer can carry, and nothing else: the tables of
    api/problems.py, the domain errors, and the types raised at the HTTP edge."""

    def subclasses(cls: type) -> list[type]:
        return [c for s in cls.__subclasses__() for c in (s, *subclasses(s))]

    raised = {
        match
        for path in (SPEC_PATH.parent.parent / "api").rglob("*.py")
        for match in re.findall(
            r'(?:ProblemException|problem_response)\(\s*\d+,\s*"([a-z0-9-]+)"', path.read_text()
        )
    }
    answered = (
        set(problems._PROBLEMS)
        | set(problems._HTTP_TYPES.values())
        | {cls.type for cls in subclasses(MailgateError)}
        | raised
        | {"http-error"}  # a status without a type of its own
    )
    assert set(PROBLEM_TYPES) == answered


def test_answers_mark_every_field_they_always_send_required() -> None:
    """No `None | str | Unset` for a subject: a field an answer always carries is required
    (nullable where it may be null). Problem's detail, request_id and errors are optional:
    they are left out when there is nothing to say."""
    schemas = openapi_spec()["components"]["schemas"]
    answers = {
        ref.rsplit("/", 1)[1]
        for _m, _p, operation in _operations()
        for response in operation["responses"].values()
        for media in response.get("content", {}).values()
        for ref in re.findall(r"#/components/schemas/[\w-]+", json.dumps(media))
    }
    seen: set[str] = set()
    while answers - seen:
        name = (answers - seen).pop()
        seen.add(name)
        schema = schemas[name]
        answers |= {
            r.rsplit("/", 1)[1]
            for r in re.findall(r"#/components/schemas/[\w-]+", json.dumps(schema))
        }
        optional = set(schema.get("properties", {})) - set(schema.get("required", []))
        if name == "Problem":
            assert optional == {"detail", "request_id", "errors"}
        else:
            assert not optional, f"{name}: {sorted(optional)} not required"
    assert {"Message", "MessageSummary", "Folder", "AccountOut", "WebhookOut"} <= seen


def test_webhooks_section_has_one_payload_per_event_type() -> None:
    spec = openapi_spec()
    assert set(spec["webhooks"]) == set(EVENT_TYPES)
    schemas = spec["components"]["schemas"]
    for event_type, item in spec["webhooks"].items():
        operation = item["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[1]]
        assert schema["properties"]["type"]["const"] == event_type
        assert set(schema["required"]) == {"type", "timestamp", "data"}
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    # the payloads share the answers' schemas (no EmailAddress-Input beside EmailAddress),
    # and every component name is one a generator can use as a class name
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]+", name) for name in schemas), sorted(schemas)
    assert "MessageSummaryOut" not in schemas and "EmailAddressOut" not in schemas


def test_webhook_bodies_match_their_schemas() -> None:
    """What the outbox writes validates against the documented payload."""
    from mailgate.api.schemas.events import EVENTS, event_model
    from mailgate.domain.examples import FOLDER, MESSAGE_SUMMARY

    data = {
        "message.created": MESSAGE_SUMMARY,
        "message.deleted": {"id": "msg_1"},
        "folder.updated": FOLDER,
        "message.sent": {
            "submission_id": "sub_1",
            "message_id": "a@b",
            "recipients": ["x@example.com"],
            "smtp_code": 250,
            "smtp_response": "ok",
        },
        "account.error": {"state": "auth_failed", "error": "AUTHENTICATIONFAILED"},
    }
    for event_type, payload in data.items():
        name, model, _when = EVENTS[event_type]
        body = {
            "type": event_type,
            "timestamp": "2025-03-14T09:26:53Z",
            "data": {"account_id": "acc_1", **payload},
        }
        event_model(event_type, name, model).model_validate(body)
