"""The OpenAPI document, exported without a database (committed as openapi/openapi.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mailgate.api.app import create_app
from mailgate.gateway.context import Gateway

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def openapi_spec() -> dict[str, Any]:
    return create_app(Gateway.offline()).openapi()


def openapi_json() -> str:
    return json.dumps(openapi_spec(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
