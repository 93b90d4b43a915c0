"""Folder listing and changes over IMAP (RFC 3501 LIST/STATUS/CREATE/RENAME/DELETE).

Folders are shown as a user sees them in a mail client: where the personal namespace
(RFC 2342) has a prefix, as Courier's ``INBOX.`` with ``.`` as separator, the prefix is
not part of a folder's ``name`` or ``path`` and its folders are top-level ones (a user sees
"Sent", not "INBOX.Sent"), and a folder created at the top level goes under the prefix
("Projects" becomes ``INBOX.Projects``). Folder ids keep the server's own path.
"""

from __future__ import annotations

import imaplib
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from imapclient import IMAPClient

from mailgate.adapters.imap import wire
from mailgate.adapters.imap.connect import NOT_A_REFUSAL, server_words
from mailgate.adapters.imap.listing import parse_list
from mailgate.adapters.imap.messages import folder_status, unselect
from mailgate.adapters.imap.roles import Role, assign_roles
from mailgate.domain.errors import AlreadyExists, InvalidRequest, NotFound, NoTrashFolder
from mailgate.domain.ids import folder_id, folder_path
from mailgate.domain.mail import Folder

MAX_NAME = 200


@dataclass(frozen=True)
class Namespace:
    """The personal namespace: where the user's folders live (RFC 2342 section 5)."""

    prefix: str = ""
    delimiter: str | None = None

    def shown(self, path: str) -> str:
        """The path a user sees: without the namespace prefix."""
        if self.prefix and path.startswith(self.prefix) and len(path) > len(self.prefix):
            return path[len(self.prefix) :]
        return path

    def top_level(self, name: str) -> str:
        """The server path of a new top-level folder."""
        return self.prefix + name


_namespaces: WeakKeyDictionary[IMAPClient, Namespace] = WeakKeyDictionary()


def namespace(client: IMAPClient) -> Namespace:
    """The connection's personal namespace (asked once per connection); none where the
    server has no NAMESPACE or answers it with nothing usable."""
    known = _namespaces.get(client)
    if known is not None:
        return known
    found = Namespace()
    if client.has_capability("NAMESPACE"):
        try:
            personal = client.namespace().personal
        except NOT_A_REFUSAL:
            raise
        except imaplib.IMAP4.error:
            personal = None
        if personal:
            prefix, delimiter = personal[0]
            found = Namespace(_text(prefix), _text(delimiter) if delimiter else None)
    _namespaces[client] = found
    return found


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


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
    for flags, delimiter, name in parse_list(wire.list_folders(client)):
        folders.append(ListedFolder(name, delimiter, flags))
    return folders


def list_folders(client: IMAPClient) -> list[Folder]:
    unselect(client)  # for true counts of the folder this connection had open
    listed = list_raw(client)
    roles = assign_roles([(f.path, f.flags, f.delimiter) for f in listed])
    paths = {f.path for f in listed}
    space = namespace(client)
    result = []
    for entry in listed:
        total, unread = counts(client, entry)
        result.append(_folder(entry, roles.get(entry.path), paths, space, total, unread))
    result.sort(key=lambda f: (f.role != "inbox", f.path.lower()))
    return result


def _folder(
    entry: ListedFolder,
    role: Role | None,
    paths: set[str],
    space: Namespace,
    total: int,
    unread: int,
) -> Folder:
    parent = None
    if entry.delimiter and entry.delimiter in entry.path:
        parent = entry.path.rpartition(entry.delimiter)[0]
        if space.prefix and parent + entry.delimiter == space.prefix:
            parent = None  # a top-level folder of the namespace (Courier's INBOX.Sent)
    shown = space.shown(entry.path)
    name = shown.rpartition(entry.delimiter)[2] if entry.delimiter else shown
    return Folder(
        id=folder_id(entry.path),
        name=name,
        path=shown,
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
    except NOT_A_REFUSAL:
        raise
    except imaplib.IMAP4.error:  # listed but not ours to read (a shared folder): still listed
        return 0, 0
    return int(status[b"MESSAGES"]), int(status[b"UNSEEN"])


def describe(
    client: IMAPClient, listed: list[ListedFolder], entry: ListedFolder, total: int, unread: int
) -> Folder:
    """One folder of a listing as the API shows it (its role and parent need the others)."""
    roles = assign_roles([(f.path, f.flags, f.delimiter) for f in listed])
    paths = {f.path for f in listed}
    return _folder(entry, roles.get(entry.path), paths, namespace(client), total, unread)


def path_with_role(client: IMAPClient, role: str) -> str | None:
    listed = list_raw(client)
    roles = assign_roles([(f.path, f.flags, f.delimiter) for f in listed])
    return next((path for path, r in roles.items() if r == role), None)


# The name of a folder made for a role the mailbox lacks (as mail clients name them).
ROLE_NAMES: dict[Role, str] = {
    "sent": "Sent",
    "drafts": "Drafts",
    "trash": "Trash",
    "junk": "Junk",
    "archive": "Archive",
}


def ensure_role(client: IMAPClient, role: Role) -> str:
    """The path of the folder with ``role``, made (and subscribed) on first need where the
    mailbox has none, as mail clients do: a plain Courier account has INBOX only."""
    found = path_with_role(client, role)
    if found is not None:
        return found
    path = namespace(client).top_level(ROLE_NAMES[role])
    try:
        client.create_folder(path)
    except NOT_A_REFUSAL:
        raise
    except imaplib.IMAP4.error as exc:
        detail = f"no {role} folder, and the server refused to create {path!r}: {server_words(exc)}"
        raise (NoTrashFolder if role == "trash" else InvalidRequest)(detail) from exc
    client.subscribe_folder(path)
    return path


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
    return describe(client, listed, entry, *counts(client, entry))


def _child_path(client: IMAPClient, name: str, parent_id: str | None) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(f"a folder name needs 1 to {MAX_NAME} characters")
    if parent_id is None:
        space = namespace(client)
        delimiter = space.delimiter or next(
            (f.delimiter for f in list_raw(client) if f.delimiter), "/"
        )
        if delimiter in name:
            raise InvalidRequest(f"a folder name cannot contain {delimiter!r}")
        return space.top_level(name)
    parent = find(client, parent_id)
    delimiter = parent.delimiter or "/"
    if delimiter in name:
        raise InvalidRequest(f"a folder name cannot contain {delimiter!r}")
    return f"{parent.path}{delimiter}{name}"


def create(client: IMAPClient, name: str, parent_id: str | None) -> Folder:
    if parent_id is None and name.strip().upper() == "INBOX":  # as on POP3: it is there
        raise AlreadyExists("INBOX exists already")
    path = _child_path(client, name, parent_id)
    if any(f.path == path for f in list_raw(client)):
        raise AlreadyExists(f"a folder {path!r} exists already")
    try:
        client.create_folder(path)
    except NOT_A_REFUSAL:
        raise
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
    except NOT_A_REFUSAL:
        raise
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
    except NOT_A_REFUSAL:
        raise
    except imaplib.IMAP4.error as exc:
        raise InvalidRequest(f"the server refused to delete it: {server_words(exc)}") from exc
