"""The Python client a user generates from the spec (openapi-python-client, pinned in the
test extras) works: generated without a single warning, imported, and driven through a real
flow against the app served over TCP and a real Dovecot account."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlmodel import select

from mailgate.api.app import create_app
from mailgate.api.openapi import openapi_json
from mailgate.api.schemas.events import EVENTS, event_model
from mailgate.gateway.context import Gateway
from mailgate.gateway.tenants import issue_api_key
from mailgate.store.db import session_scope
from mailgate.store.migrate import upgrade
from mailgate.store.models import WebhookEvent
from tests.conftest import make_settings
from tests.harness.dovecot import DovecotServer
from tests.harness.serve import served
from tests.mail_factory import message_with_attachments

PACKAGE = "mailgate_client"


def generate_python_client(spec: str, into: Path) -> str:
    """Run openapi-python-client on ``spec``; its output, which must be free of warnings."""
    (into / "openapi.json").write_text(spec)
    (into / "config.yaml").write_text("post_hooks: []\n")  # no formatter: it is imported only
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            "openapi.json",
            "--config",
            "config.yaml",
            "--meta",
            "none",
            "--output-path",
            PACKAGE,
        ],
        cwd=into,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    where = tmp_path_factory.mktemp("python-client")
    output = generate_python_client(openapi_json(), where)
    assert "warning" not in output.lower(), output  # a generator warning fails the test
    assert (where / PACKAGE / "api" / "messages" / "get_message_raw.py").is_file()
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_generated_python_client_flow(
    client_package: ModuleType, dovecot: DovecotServer, tmp_path: Path
) -> None:
    models = _module("models")
    create_account = _module("api.accounts.create_account")
    list_folders = _module("api.folders.list_folders")
    list_messages = _module("api.messages.list_messages")
    get_message = _module("api.messages.get_message")
    get_message_raw = _module("api.messages.get_message_raw")
    get_attachment = _module("api.messages.get_attachment")
    update_message = _module("api.messages.update_message")
    create_webhook = _module("api.webhooks.create_webhook")

    settings = make_settings(tmp_path, None, allow_private_webhooks=True)
    gateway = Gateway.from_settings(settings)
    upgrade(gateway.engine)
    user = dovecot.add_user()
    raw = message_with_attachments(subject="Quarterly", attachments={"r.pdf": b"%PDF-1.4 q1"})
    dovecot.deliver(user, [raw])
    key = issue_api_key(gateway.engine, "generated").key
    try:
        with served(create_app(gateway)) as base:
            client = client_package.AuthenticatedClient(base_url=base, token=key)

            # add an account
            body = models.AccountCreate(
                protocol=models.MailProtocol.IMAP,
                host="127.0.0.1",
                port=dovecot.imap_port,
                security=models.Security.NONE,
                username=user.username,
                password=user.password,
            )
            account = create_account.sync(client=client, body=body)
            assert isinstance(account, models.AccountOut), account
            assert account.state is models.AccountState.CONNECTED

            # list the inbox, read the message
            page = list_messages.sync(account.id, client=client)
            assert isinstance(page, models.MessagePage), page
            (summary,) = page.items
            assert summary.subject == "Quarterly" and summary.has_attachments
            message = get_message.sync(account.id, summary.id, client=client)
            assert isinstance(message, models.Message), message
            assert message.text is not None and "See the attachments." in message.text
            (attachment,) = message.attachments
            assert attachment.filename == "r.pdf"

            # raw source and attachment as bytes
            source = get_message_raw.sync(account.id, summary.id, client=client)
            assert source.payload.read() == raw
            octets = get_attachment.sync(account.id, summary.id, attachment.id, client=client)
            assert octets.payload.read() == b"%PDF-1.4 q1"

            # a webhook endpoint, with its secret
            hook = create_webhook.sync(
                client=client,
                body=models.WebhookCreate(
                    url="http://127.0.0.1:9/hooks",
                    events=[models.EventPattern.MESSAGE],
                ),
            )
            assert isinstance(hook, models.WebhookCreated), hook
            assert hook.secret.startswith("whsec_")
            assert models.EventType.MESSAGE_CREATED in hook.events

            # flag, then move to another folder
            flagged = update_message.sync(
                account.id,
                summary.id,
                client=client,
                body=models.MessageUpdate(flagged=True, seen=True),
            )
            assert isinstance(flagged, models.MessageSummary), flagged
            assert flagged.flags.flagged and flagged.flags.seen
            folders = list_folders.sync(account.id, client=client)
            archive = next(f for f in folders.items if f.role is models.FolderRole.ARCHIVE)
            moved = update_message.sync(
                account.id,
                summary.id,
                client=client,
                body=models.MessageUpdate(folder_id=archive.id),
            )
            assert isinstance(moved, models.MessageSummary), moved
            assert moved.folder_id == archive.id
            assert list_messages.sync(account.id, client=client).items == []

            # an error is a typed problem
            missing = get_message.sync(account.id, "msg_nope", client=client)
            assert isinstance(missing, models.Problem), missing
            assert missing.type_ is models.ProblemType.NOT_FOUND
            assert missing.status == 404

        # the events the flag and the move queued for the endpoint are what the spec's
        # `webhooks` section says
        with session_scope(gateway.engine) as session:
            queued = session.exec(select(WebhookEvent)).all()
        assert {event.type for event in queued} >= {"message.updated"}
        for event in queued:
            name, data, _when = EVENTS[event.type]
            event_model(event.type, name, data).model_validate_json(event.payload)
    finally:
        gateway.close()
