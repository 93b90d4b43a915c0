"""Schemathesis against the app's own OpenAPI document (issue 11), with real mailboxes
behind it: an IMAP and a POP3 account of real Dovecot users, seeded with mail.

Every operation is one test item. Schemathesis' coverage phase (boundary and negative
values, missing parameters, wrong methods) runs first, then EXAMPLES generated cases,
positive and negative, derandomized: the same cases every run. Path, query and body ids
are real ones often enough (the placeholders of tests/fuzz_world.py) that the calls reach
the mail server; each operation must have succeeded at least once.

Every answer is checked by schemathesis' default checks (documented status, content type
and headers, response schema, Allow on 405, auth enforced, ...) except three:
not_a_server_error, replaced by only_mailbox_server_errors; positive_data_acceptance (a
well-formed request for an id that does not exist is a 404, not a 2xx); and
negative_data_rejection, because pydantic's lax mode accepts what the schema does not
(`"draft": 0` as false, `since=0.5` as a Unix time): a known gap, not checked here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import CoveragePhaseData
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from mailgate.api.app import create_app
from mailgate.api.openapi import openapi_spec
from mailgate.domain.errors import MailboxError
from mailgate.gateway import keys, tenants
from mailgate.gateway.context import Gateway
from mailgate.gateway.crypto import new_api_key
from mailgate.store.migrate import upgrade
from tests.conftest import make_settings
from tests.fuzz_world import PLACEHOLDERS, World
from tests.harness.dovecot import DovecotServer
from tests.harness.oauth import OAuthServer
from tests.harness.postfix import PostfixServer

SEED = 20250611
EXAMPLES = 60  # generated cases per operation, besides the coverage phase's

# Where placeholders go in, and how often (else schemathesis' own value stays).
PARAMETERS = {
    "path.account_id": ("accounts", 0.8),
    "path.folder_id": ("folders", 0.6),
    "query.folder_id": ("folders", 0.6),
    "body.folder_id": ("folders", 0.6),
    "body.parent_id": ("folders", 0.5),
    "body.watched_folders[*]": ("folders", 0.5),
    "path.message_id": ("messages", 0.7),
    "body.ids[*]": ("messages", 0.6),
    "path.attachment_id": ("attachments", 0.6),
    "path.webhook_id": ("webhooks", 0.7),
    "path.key_id": ("keys", 0.7),
    "path.app_id": ("apps", 0.7),
    "path.draft_id": ("drafts", 0.7),
    "path.submission_id": ("submissions", 0.7),
    "path.upload_id": ("uploads", 0.7),
    "body.attachments[*].upload_id": ("uploads", 0.5),
    "body.from.email": ("senders", 0.6),
    "body.send_as[*]": ("senders", 0.6),
    "body.to[*].email": ("senders", 0.7),
    "body.cc[*].email": ("senders", 0.5),
    "body.bcc[*].email": ("senders", 0.5),
    "body.return_to": ("return_tos", 0.7),
    "body.return_to_allowed[*]": ("return_tos", 0.7),
    "body.redirect_uri": ("urls", 0.7),
    "body.authorization_url": ("urls", 0.5),
    "body.token_url": ("urls", 0.5),
    "body.userinfo_url": ("urls", 0.5),
    "body.revocation_url": ("urls", 0.5),
    "query.state": ("signin_states", 0.7),
    "query.code": ("signin_codes", 0.7),
    "query.cursor": ("cursors", 0.3),
    "query.since": ("states", 0.5),
    "query.last_event_id": ("states", 0.5),
    "body.account_id": ("accounts", 0.7),
    "body.host": ("hosts", 0.8),
    "body.port": ("ports", 0.8),
    "body.username": ("usernames", 0.8),
    "body.password": ("passwords", 0.8),
    "body.security": ("securities", 0.8),
    "body.url": ("urls", 0.5),
}
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "dictionaries": {name: {"values": values} for name, values in PLACEHOLDERS.items()},
        "parameters": {
            key: {"dictionary": name, "probability": probability}
            for key, (name, probability) in PARAMETERS.items()
        },
    }
)
# Where a 5xx may come from the mail server itself: operations that try connection settings
# the caller gave. Everywhere else the mailbox is one of the run's healthy Dovecot accounts.
CONNECTING = {
    "POST /v1/accounts",
    "PATCH /v1/accounts/{account_id}",
    "PUT /v1/accounts/{account_id}/smtp",
}
MAILBOX_PROBLEMS = {MailboxError.type} | {cls.type for cls in MailboxError.__subclasses__()}


class Target:
    """The ASGI app schemathesis calls. The schema is loaded when the module is collected,
    before any fixture ran: the ``fuzz_app`` fixture plugs in the app on the run's own
    database."""

    app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the fuzz_app fixture plugs in the app"
        await self.app(scope, receive, send)


TARGET = Target()
# Made now, stored by the ``world`` fixture: the coverage phase's cases are built when the
# items are collected, and they need the key as much as the generated ones.
API_KEY = new_api_key()
schema = schemathesis.openapi.from_dict(openapi_spec(), config=CONFIG)
schema.app = TARGET


_COVERAGE_IDS = {
    "account_id": itertools.cycle(PLACEHOLDERS["accounts"]),
    "folder_id": itertools.cycle(PLACEHOLDERS["folders"]),
    "message_id": itertools.cycle(PLACEHOLDERS["messages"]),
    "attachment_id": itertools.cycle(PLACEHOLDERS["attachments"]),
    "webhook_id": itertools.cycle(PLACEHOLDERS["webhooks"]),
    "key_id": itertools.cycle(PLACEHOLDERS["keys"]),
    "app_id": itertools.cycle(PLACEHOLDERS["apps"]),
    "draft_id": itertools.cycle(PLACEHOLDERS["drafts"]),
    "submission_id": itertools.cycle(PLACEHOLDERS["submissions"]),
    "upload_id": itertools.cycle(PLACEHOLDERS["uploads"]),
}


@schema.hook
def map_case(context: Any, case: Any) -> Any:
    """Coverage-phase cases vary one thing at a time; the ids they do not vary become real
    ones (in turn), so the odd query or body gets past the 404 to the mail server. The
    dictionaries of PARAMETERS do this for the generated cases."""
    data = case.meta.phase.data if case.meta else None
    if not isinstance(data, CoveragePhaseData) or not case.path_parameters:
        return case
    varied = data.parameter if data.parameter_location == "path" else None
    case.path_parameters = {
        name: value if name == varied else next(_COVERAGE_IDS[name])
        for name, value in case.path_parameters.items()
    }
    return case


@schema.auth(refresh_interval=None)
class BearerKey:
    """A real API key on every case, except those schemathesis sends without one on purpose."""

    def get(self, case: Any, ctx: Any) -> str:
        return API_KEY

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The app on a database of its own; a short connect timeout, since the fuzzer names
    hosts that accept connections and never answer."""
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'mailgate.db'}"
    # no rate limits: thousands of cases share one key (tests/test_rate_limits.py has them)
    settings = make_settings(
        tmp, url, connect_timeout=0.5, rate_limit_per_minute=0, bad_keys_per_minute=0
    )
    gw = Gateway.from_settings(settings)
    upgrade(gw.engine)
    TARGET.app = create_app(gw)
    yield TARGET.app
    TARGET.app = None
    gw.close()


@pytest.fixture(scope="module")
def world(
    fuzz_app: FastAPI,
    dovecot: DovecotServer,
    oauth_server: OAuthServer,
    oauth_dovecot: DovecotServer,
    postfix: PostfixServer,
) -> Iterator[World]:
    gw: Gateway = fuzz_app.state.gateway
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keys, "new_api_key", lambda: API_KEY)
        assert tenants.issue_api_key(gw.engine, "fuzz").key == API_KEY
    auth = {"Authorization": f"Bearer {API_KEY}"}
    with TestClient(fuzz_app, raise_server_exceptions=False) as client:
        yield World.make(client, auth, dovecot, oauth_server, oauth_dovecot, postfix)


@pytest.fixture
def reaches_its_goal(request: pytest.FixtureRequest, world: World) -> Iterator[None]:
    """After an operation's item: it was called, and at least once it succeeded."""
    yield
    label = request.node.operation_label
    calls = sum(n for (op, _), n in world.answers.items() if op == label)
    assert world.succeeded(label), f"{label}: no success in {calls} calls"


def only_mailbox_server_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except a mail server's own trouble (a 502/503/504 `mailbox-*` problem) where
    the caller named the server. Whether the status is documented is checked apart."""
    if response.status_code < 500:
        return None
    is_problem = "application/problem+json" in response.headers.get("content-type", [""])[0]
    problem_type = response.json().get("type") if is_problem else None
    if case.operation.label in CONNECTING and problem_type in MAILBOX_PROBLEMS:
        return None
    raise AssertionError(f"Server error {response.status_code}: {response.text[:1000]}")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.usefixtures("reaches_its_goal")
def test_api(case: Any, world: World) -> None:
    world.resolve(case)
    response = case.call_and_validate(
        excluded_checks=[not_a_server_error, positive_data_acceptance, negative_data_rejection],
        additional_checks=[only_mailbox_server_errors],
    )
    world.record(case, response)


def test_the_run_covers_every_operation_of_the_app(fuzz_app: FastAPI) -> None:
    """Schemathesis works from the document the app serves and makes an item of each of
    its operations."""
    spec = fuzz_app.openapi()
    assert schema.raw_schema == spec
    documented = {
        f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item
    }
    fuzzed = {result.ok().label for result in schema.get_all_operations()}
    assert fuzzed == documented
