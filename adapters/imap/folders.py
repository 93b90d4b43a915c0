"""Folder listing and changes over IMAP (RFC 3501 LIST/STATUS/CREATE/RENAME/DELETE)."""

from __future__ import annotations

import imaplib
from dataclasses import dataclass

from imapclient import IMAPClient

from mailgate.adapters.imap import wire
from mailgate.adapters.imap.connect import server_words
from mailgate.adapters.imap.messages import folder_status, unselect
from mailgate.adapters.imap.roles import assign_roles
from mailgate.domain.errors import AlreadyExists, InvalidRequest, NotFound
from mailgate.domain.ids import folder_id, folder_path
from mailgate.domain.mail import Folder

MAX_NAME = 200


@dataclass(frozen=True)
class ListedFolder:
    path: str
    delimiter: str | None
    flags: tuple[bytes, ...]

    @property
    def selectable(self) -> bool:
        lowered = {f.lower() for f in self.flags}
        return b"\\noselect" not in lowered and b"\\nonexistent" not in lowered


def list_raw(client: IMAPClient) -> list[ListedFolder]:
    wire.drop_untagged(client, "LIST")  # unasked ones (NOTIFY MailboxName)
    folders = []
    for flags, delimiter, name in client.list_folders():
        sep = delimiter.decode() if isinstance(delimiter, bytes) else delimiter
        folders.append(ListedFolder(str(name), sep, tuple(flags)))
    return folders


def list_folders(client: IMAPClient) -> list[Folder]:
    unselect(client)  # for true counts of the folder this connection had open
    listed = list_raw(client)
    roles = assign_roles([(f.path, f.flags, f.delimiter) for f in listed])
    paths = {f.path for f in listed}
    result = []
    for entry in listed:
        total, unread = counts(client, entry)
        result.append(_folder(entry, roles.get(entry.path), paths, total, unread))
    result.sort(key=lambda f: (f.role != "inbox", f.path.lower()))
    return result


def _folder(entry: ListedFolder, role: object, paths: set[str], total: int, unread: int) -> Folder:
    name, parent = entry.path, None
    if entry.delimiter and entry.delimiter in entry.path:
        parent, _, name = entry.path.rpartition(entry.delimiter)
    return Folder(
        id=folder_id(entry.path),
        name=name,
        path=entry.path,
        delimiter=entry.delimiter,
        parent_id=folder_id(parent) if parent and parent in paths else None,
        role=role,
        total=total,
        unread=unread,
    )


def counts(client: IMAPClient, entry: ListedFolder) -> tuple[int, int]:
    """How many messages the folder holds and how many are unread (STATUS); 0 for a folder
    the server will not report on."""
    if not entry.selectable:
        return 0, 0
    try:
        status = folder_status(client, entry.path, [b"MESSAGES", b"UNSEEN"])
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:  # listed but not ours to read (a shared folder): still listed
        return 0, 0
    return int(status[b"MESSAGES"]), int(status[b"UNSEEN"])


def describe(listed: list[ListedFolder], entry: ListedFolder, total: int, unread: int) -> Folder:
    """One folder of a listing as the API shows it (its role and parent need the others)."""
    roles = assign_roles([(f.path, f.flags, f.delimiter) for f in listed])
    return _folder(entry, roles.get(entry.path), {f.path for f in listed}, total, unread)


def path_with_role(client: IMAPClient, role: str) -> str | None:
    listed = list_raw(client)
    roles = assign_roles([(f.path, f.flags, f.delimiter) for f in listed])
    return next((path for path, r in roles.items() if r == role), None)


def find(client: IMAPClient, id_: str) -> ListedFolder:
    path = folder_path(id_)
    if path is None:
        raise NotFound("folder")
    for entry in list_raw(client):
        if entry.path == path:
            return entry
    raise NotFound("folder")


def get(client: IMAPClient, id_: str) -> Folder:
    """One folder, asking STATUS of it alone."""
    unselect(client)
    listed = list_raw(client)
    path = folder_path(id_)
    entry = next((f for f in listed if f.path == path), None)
    if entry is None:
        raise NotFound("folder")
    return describe(listed, entry, *counts(client, entry))


def _child_path(client: IMAPClient, name: str, parent_id: str | None) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(f"a folder name needs 1 to {MAX_NAME} characters")
    if parent_id is None:
        delimiter = next((f.delimiter for f in list_raw(client) if f.delimiter), "/")
        if delimiter in name:
            raise InvalidRequest(f"a folder name cannot contain {delimiter!r}")
        return name
    parent = find(client, parent_id)
    delimiter = parent.delimiter or "/"
    if delimiter in name:
        raise InvalidRequest(f"a folder name cannot contain {delimiter!r}")
    return f"{parent.path}{delimiter}{name}"


def create(client: IMAPClient, name: str, parent_id: str | None) -> Folder:
    path = _child_path(client, name, parent_id)
    if any(f.path == path for f in list_raw(client)):
        raise AlreadyExists(f"a folder {path!r} exists already")
    try:
        client.create_folder(path)
    except imaplib.IMAP4.error as exc:
        raise InvalidRequest(f"the server refused to create {path!r}: {server_words(exc)}") from exc
    client.subscribe_folder(path)
    return get(client, folder_id(path))


def rename(
    client: IMAPClient, id_: str, name: str | None, parent_id: str | None, keep_parent: bool
) -> Folder:
    current = find(client, id_)
    if current.path.upper() == "INBOX":
        raise InvalidRequest("INBOX cannot be renamed")
    parent_path, _, current_name = (
        current.path.rpartition(current.delimiter) if current.delimiter else ("", "", current.path)
    )
    if keep_parent:
        parent_id = folder_id(parent_path) if parent_path else None
    path = _child_path(client, current_name if name is None else name, parent_id)
    if path == current.path:
        return get(client, id_)
    if path.startswith(current.path + (current.delimiter or "/")):
        raise InvalidRequest("a folder cannot move into itself")
    if any(f.path == path for f in list_raw(client)):
        raise AlreadyExists(f"a folder {path!r} exists already")
    try:
        client.rename_folder(current.path, path)
    except imaplib.IMAP4.error as exc:
        raise InvalidRequest(f"the server refused the rename: {server_words(exc)}") from exc
    client.subscribe_folder(path)
    return get(client, folder_id(path))


def delete(client: IMAPClient, id_: str) -> None:
    current = find(client, id_)
    if current.path.upper() == "INBOX":
        raise InvalidRequest("INBOX cannot be deleted")
    try:
        client.delete_folder(current.path)
    except imaplib.IMAP4.error as exc:
        raise InvalidRequest(f"the server refused to delete it: {server_words(exc)}") from exc
