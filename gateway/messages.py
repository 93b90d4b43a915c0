"""Folders and messages of one account: tenant check, then one adapter call. No protocol
knowledge here or above."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from mailgate.adapters.base import MailAdapter
from mailgate.domain.changes import Event, Kind, payload
from mailgate.domain.errors import NotFound
from mailgate.domain.ids import is_valid_id
from mailgate.domain.mail import (
    BatchResult,
    Download,
    Folder,
    Message,
    MessageChange,
    MessageFilter,
    MessagePage,
    MessageSummary,
)
from mailgate.gateway.accounts import follow_folder_rename, load_account
from mailgate.gateway.changes import AccountChanges
from mailgate.gateway.context import Gateway
from mailgate.store.db import read_connection, read_session
from mailgate.store.models import Account

_ACCOUNTS = Account.metadata.tables["account"]
_ACCOUNT_ROW = sa.select(_ACCOUNTS).where(_ACCOUNTS.c.id == sa.bindparam("id"))


def mailbox(gw: Gateway, tenant_id: str, account_id: str) -> MailAdapter:
    """The adapter of the tenant's account; another tenant's account is a 404. The account
    is read on every call (a deleted or changed one shows at once), as a plain row: an ORM
    object is made only when the adapter must be built (about a millisecond a request)."""
    if not is_valid_id(account_id, "acc"):
        raise NotFound("account")
    with read_connection(gw.engine) as connection:
        row = connection.execute(_ACCOUNT_ROW, {"id": account_id}).mappings().first()
    if row is None or row["tenant_id"] != tenant_id:
        raise NotFound("account")
    adapter = gw.mailboxes.cached(row)
    if adapter is not None:
        return adapter
    with read_session(gw.engine) as session:
        account = load_account(session, tenant_id, account_id)
    return gw.mailboxes.adapter(account)


def _log(gw: Gateway, account_id: str, *events: Event) -> None:
    """Changes made through the API go into the change log and the webhook outbox as soon
    as the mailbox has them."""
    AccountChanges(gw.engine, account_id).record(*events)


def _log_changed(
    gw: Gateway, account_id: str, kind: Kind, old_id: str, now: Folder | MessageSummary
) -> None:
    """A change that kept the id is an update; one that gave a new id (an IMAP folder renamed,
    a message moved where the server did not tell its new UID) is the old one gone and a new
    one made."""
    if now.id == old_id:
        _log(gw, account_id, Event(kind, old_id, "updated", payload(now)))
    else:
        _log(
            gw,
            account_id,
            Event(kind, old_id, "destroyed"),
            Event(kind, now.id, "created", payload(now)),
        )


def list_folders(gw: Gateway, tenant_id: str, account_id: str) -> list[Folder]:
    return mailbox(gw, tenant_id, account_id).list_folders()


def create_folder(
    gw: Gateway, tenant_id: str, account_id: str, name: str, parent_id: str | None
) -> Folder:
    folder = mailbox(gw, tenant_id, account_id).create_folder(name, parent_id)
    _log(gw, account_id, Event("folder", folder.id, "created", payload(folder)))
    return folder


def rename_folder(
    gw: Gateway,
    tenant_id: str,
    account_id: str,
    folder_id: str,
    name: str | None,
    parent_id: str | None,
    parent_given: bool,
) -> Folder:
    adapter = mailbox(gw, tenant_id, account_id)
    folder = adapter.rename_folder(folder_id, name, parent_id, keep_parent=not parent_given)
    if folder.id != folder_id:  # IMAP folder ids follow the path
        follow_folder_rename(gw, account_id, folder_id, folder)
    _log_changed(gw, account_id, "folder", folder_id, folder)
    return folder


def delete_folder(gw: Gateway, tenant_id: str, account_id: str, folder_id: str) -> None:
    mailbox(gw, tenant_id, account_id).delete_folder(folder_id)
    _log(gw, account_id, Event("folder", folder_id, "destroyed"))


def list_messages(
    gw: Gateway,
    tenant_id: str,
    account_id: str,
    folder_id: str | None,
    filters: MessageFilter,
    limit: int,
    cursor: str | None,
) -> MessagePage:
    adapter = mailbox(gw, tenant_id, account_id)
    return adapter.list_messages(folder_id, filters, limit, cursor)


def get_message(
    gw: Gateway, tenant_id: str, account_id: str, message_id: str, mark_seen: bool
) -> Message:
    """The whole message; ``mark_seen`` also marks it read, a change like any other (its
    event and change-log entry, and no second report by the watcher)."""
    adapter = mailbox(gw, tenant_id, account_id)
    message = adapter.get_message(message_id)
    if mark_seen and not message.flags.seen:
        summary = adapter.update_message(message_id, MessageChange(seen=True))
        _log(gw, account_id, Event("message", message_id, "updated", payload(summary)))
        message.flags = summary.flags
    return message


def stream_raw(
    gw: Gateway, tenant_id: str, account_id: str, message_id: str
) -> tuple[Download, Iterator[bytes]]:
    return mailbox(gw, tenant_id, account_id).stream_raw(message_id)


def stream_attachment(
    gw: Gateway, tenant_id: str, account_id: str, message_id: str, attachment_id: str
) -> tuple[Download, Iterator[bytes]]:
    return mailbox(gw, tenant_id, account_id).stream_attachment(message_id, attachment_id)


def update_message(
    gw: Gateway,
    tenant_id: str,
    account_id: str,
    message_id: str,
    change: MessageChange,
    folder_id: str | None,
) -> MessageSummary:
    adapter = mailbox(gw, tenant_id, account_id)
    summary = None
    if not change.is_empty():
        summary = adapter.update_message(message_id, change)
    if folder_id is not None:
        summary = adapter.move_message(message_id, folder_id)
    if summary is None:
        summary = adapter.update_message(message_id, change)
    _log_changed(gw, account_id, "message", message_id, summary)
    return summary


def copy_message(
    gw: Gateway, tenant_id: str, account_id: str, message_id: str, folder_id: str
) -> MessageSummary:
    copy = mailbox(gw, tenant_id, account_id).copy_message(message_id, folder_id)
    _log(gw, account_id, Event("message", copy.id, "created", payload(copy)))
    return copy


def delete_message(
    gw: Gateway, tenant_id: str, account_id: str, message_id: str, permanent: bool
) -> None:
    result = batch(gw, tenant_id, account_id, [message_id], None, None, True, permanent)[0]
    if result.status != 200:
        raise NotFound("message")


def batch(
    gw: Gateway,
    tenant_id: str,
    account_id: str,
    message_ids: list[str],
    change: MessageChange | None,
    folder_id: str | None,
    delete: bool,
    permanent: bool,
) -> list[BatchResult]:
    results = mailbox(gw, tenant_id, account_id).batch(
        message_ids, change, folder_id, delete, permanent
    )
    events = [  # an id kept (flags, a move, to the trash) or gone
        Event("message", r.id, "updated" if r.message_id else "destroyed")
        for r in results
        if r.status == 200
    ]
    _log(gw, account_id, *events)
    return results
