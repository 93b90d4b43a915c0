"""The committed spec is the app's spec, and every operation documents itself."""

from __future__ import annotations

import json

from mailgate.api.openapi import SPEC_PATH, openapi_json, openapi_spec


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
                if code not in ("204", "303"):  # no body: nothing, or a redirect
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
