"""The per-account `watched_folders` setting, against the real Dovecot, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from mailgate.gateway.context import Gateway
from mailgate.gateway.mailboxes import watched_paths
from mailgate.store.models import Account
from tests.harness.dovecot import DovecotServer, MailUser
from tests.helpers import account_body, assert_problem


def add_account(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    user: MailUser,
    protocol: str = "imap",
) -> dict[str, Any]:
    body = account_body(
        protocol, dovecot.imap_port if protocol == "imap" else dovecot.pop3_port, user
    )
    response = client.post("/v1/accounts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def folder_ids(client: TestClient, auth: dict[str, str], account_id: str) -> dict[str, str]:
    response = client.get(f"/v1/accounts/{account_id}/folders", headers=auth)
    assert response.status_code == 200, response.text
    return {f["path"]: f["id"] for f in response.json()["items"]}


def stored_paths(gateway: Gateway, account_id: str) -> set[str] | None:
    with Session(gateway.engine) as session:
        account = session.get(Account, account_id)
        assert account is not None
        return watched_paths(account)


@pytest.fixture
def imap_account(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> dict[str, Any]:
    return add_account(client, auth, dovecot, mail_user)


def test_default_is_every_folder(
    client: TestClient, auth: dict[str, str], gateway: Gateway, imap_account: dict[str, Any]
) -> None:
    assert imap_account["watched_folders"] is None
    url = f"/v1/accounts/{imap_account['id']}"
    assert client.get(url, headers=auth).json()["watched_folders"] is None
    assert stored_paths(gateway, imap_account["id"]) is None


def test_patch_sets_keeps_and_resets_the_watched_folders(
    client: TestClient, auth: dict[str, str], gateway: Gateway, imap_account: dict[str, Any]
) -> None:
    url = f"/v1/accounts/{imap_account['id']}"
    ids = folder_ids(client, auth, imap_account["id"])
    chosen = [ids["Archive"], ids["INBOX"]]

    response = client.patch(
        url, json={"watched_folders": [*chosen, ids["Archive"]]}, headers=auth
    )  # a repeated id counts once, the order stays
    assert response.status_code == 200, response.text
    assert response.json()["watched_folders"] == chosen
    assert client.get(url, headers=auth).json()["watched_folders"] == chosen
    assert stored_paths(gateway, imap_account["id"]) == {"Archive", "INBOX"}

    renamed = client.patch(url, json={"name": "Work"}, headers=auth)  # key absent: unchanged
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["watched_folders"] == chosen

    reset = client.patch(url, json={"watched_folders": None}, headers=auth)
    assert reset.status_code == 200, reset.text
    assert reset.json()["watched_folders"] is None
    assert stored_paths(gateway, imap_account["id"]) is None


def test_an_empty_list_watches_nothing(
    client: TestClient, auth: dict[str, str], gateway: Gateway, imap_account: dict[str, Any]
) -> None:
    url = f"/v1/accounts/{imap_account['id']}"
    response = client.patch(url, json={"watched_folders": []}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["watched_folders"] == []
    assert stored_paths(gateway, imap_account["id"]) == set()


@pytest.mark.parametrize(
    "bogus",
    ["nope", "fld_", "fld_!!!", "msg_AAAAAAAAAAAAAAAAAAAAAA", "fld_Tm9TdWNoRm9sZGVy"],
    ids=["no prefix", "empty", "not base64", "message id", "no such folder"],
)
def test_an_id_that_is_no_folder_here_is_refused(
    client: TestClient, auth: dict[str, str], imap_account: dict[str, Any], bogus: str
) -> None:
    url = f"/v1/accounts/{imap_account['id']}"
    inbox = folder_ids(client, auth, imap_account["id"])["INBOX"]
    response = client.patch(url, json={"watched_folders": [inbox, bogus]}, headers=auth)
    assert "watched_folders[1]" in str(assert_problem(response, 422, "invalid-folder-id")["detail"])
    assert client.get(url, headers=auth).json() == imap_account  # nothing changed


def test_a_folder_of_another_account_is_refused(
    client: TestClient,
    auth: dict[str, str],
    dovecot: DovecotServer,
    imap_account: dict[str, Any],
) -> None:
    other = add_account(client, auth, dovecot, dovecot.add_user())
    created = client.post(
        f"/v1/accounts/{other['id']}/folders", json={"name": "Projects"}, headers=auth
    )
    assert created.status_code == 201, created.text
    url = f"/v1/accounts/{imap_account['id']}"
    response = client.patch(url, json={"watched_folders": [created.json()["id"]]}, headers=auth)
    assert_problem(response, 422, "invalid-folder-id")
    assert client.get(url, headers=auth).json()["watched_folders"] is None


def test_pop3_accounts_have_no_watched_folders(
    client: TestClient,
    auth: dict[str, str],
    gateway: Gateway,
    dovecot: DovecotServer,
    mail_user: MailUser,
) -> None:
    account = add_account(client, auth, dovecot, mail_user, "pop3")
    assert account["watched_folders"] is None
    url = f"/v1/accounts/{account['id']}"
    inbox = folder_ids(client, auth, account["id"])["INBOX"]
    for value in ([inbox], []):
        response = client.patch(url, json={"watched_folders": value}, headers=auth)
        assert_problem(response, 422, "validation-error")
    allowed = client.patch(url, json={"watched_folders": None}, headers=auth)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["watched_folders"] is None
    assert stored_paths(gateway, account["id"]) is None


def test_not_accepted_when_adding_an_account(
    client: TestClient, auth: dict[str, str], dovecot: DovecotServer, mail_user: MailUser
) -> None:
    body = account_body("imap", dovecot.imap_port, mail_user, watched_folders=None)
    assert_problem(client.post("/v1/accounts", json=body, headers=auth), 422, "validation-error")


@pytest.mark.parametrize(
    "value",
    ["fld_SU5CT1g", [1], [""], ["fld_SU5CT1g"] * 1001],
    ids=["not a list", "int", "empty id", "too many"],
)
def test_malformed_values_are_schema_errors(
    client: TestClient, auth: dict[str, str], imap_account: dict[str, Any], value: Any
) -> None:
    url = f"/v1/accounts/{imap_account['id']}"
    response = client.patch(url, json={"watched_folders": value}, headers=auth)
    assert_problem(response, 422, "validation-error")
