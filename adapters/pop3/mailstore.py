"""The server-side state POP3 lacks, kept in Mailgate's store: folders, flags, keywords,
moves, copies, deletions. Everything here is one account's view; nothing talks POP3."""

from __future__ import annotations

import email
import json
from collections.abc import Iterable
from email import policy
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailgate.adapters.mime import html_to_text, make_preview, parse_message, to_message
from mailgate.adapters.mime._charset import decode_bytes
from mailgate.adapters.mime.summary import quick_summary
from mailgate.domain.errors import AlreadyExists, InvalidCursor, InvalidRequest, NotFound
from mailgate.domain.ids import Cursor, filter_fingerprint, new_id
from mailgate.domain.mail import (
    EmailAddress,
    Flags,
    Folder,
    Message,
    MessageChange,
    MessageFilter,
    MessagePage,
    MessageSummary,
)
from mailgate.store.db import session_scope
from mailgate.store.models import Pop3Folder, Pop3Message, as_utc

STANDARD_FOLDERS = (
    ("INBOX", "inbox"),
    ("Sent", "sent"),
    ("Drafts", "drafts"),
    ("Trash", "trash"),
    ("Junk", "junk"),
    ("Archive", "archive"),
)
SEARCH_TEXT_LIMIT = 200_000
_SYSTEM_FLAGS = ("seen", "flagged", "answered", "draft")


def describe(raw: bytes) -> dict[str, Any]:
    """The columns a stored message needs for lists and search, from its raw bytes.

    Runs once per downloaded message, so it uses the cheap compat32 path (the full parser
    costs ~2 ms a message, which would halve sync throughput); GET still parses fully."""
    head, sep, _ = raw.partition(b"\r\n\r\n")
    if not sep:
        head, _, _ = raw.partition(b"\n\n")
    message = email.message_from_bytes(raw[: SEARCH_TEXT_LIMIT * 2], policy=policy.compat32)
    texts: list[str] = []
    has_attachments = False
    for index, part in enumerate(message.walk()):
        if index > 200 or part.is_multipart():
            continue
        kind = part.get_content_type()
        attached = part.get_content_disposition() == "attachment" or bool(part.get_filename())
        if attached or not kind.startswith("text/"):
            has_attachments = has_attachments or attached or index > 0
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            text = decode_bytes(payload, part.get_content_charset())
            texts.append(html_to_text(text) if kind == "text/html" else text)
    plain = next((t for t in texts), "")
    quick = quick_summary(head, preview=make_preview(plain, None) if plain else "")

    def line(addresses: list[EmailAddress]) -> str:
        return " ".join(f"{a.name or ''} <{a.email}>" for a in addresses).lower()

    return {
        "size": len(raw),
        "subject": quick.subject,
        "addresses": json.dumps(
            {k: [a.model_dump() for a in getattr(quick, k)] for k in ("from_", "to", "cc")}
        ),
        "from_text": line(quick.from_),
        "to_text": line(quick.to),
        "search_text": " ".join(
            [quick.subject or "", line(quick.from_), line(quick.to), line(quick.cc), *texts]
        ).lower()[:SEARCH_TEXT_LIMIT],
        "date": quick.date,
        "preview": quick.preview,
        "has_attachments": has_attachments,
    }


class MailStore:
    def __init__(self, engine: Engine, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id

    # -- describing: the list and search columns, filled in from raw after download -----

    def describe_pending(self, batch: int = 500) -> int:
        """Fill in the columns of every message downloaded but not yet described."""
        done = 0
        while True:
            with session_scope(self.engine) as session:
                rows = session.exec(
                    select(Pop3Message)
                    .where(
                        Pop3Message.account_id == self.account_id,
                        col(Pop3Message.described).is_(False),
                    )
                    .limit(batch)
                ).all()
                for row in rows:
                    _describe_row(row)
                    session.add(row)
            done += len(rows)
            if len(rows) < batch:
                return done

    # -- folders -----------------------------------------------------------------------

    def ensure_standard_folders(self, session: Session) -> dict[str, Pop3Folder]:
        rows = session.exec(
            select(Pop3Folder).where(Pop3Folder.account_id == self.account_id)
        ).all()
        by_role = {row.role: row for row in rows if row.role}
        for name, role in STANDARD_FOLDERS:
            if role not in by_role:
                row = Pop3Folder(id=new_id("fld"), account_id=self.account_id, name=name, role=role)
                session.add(row)
                by_role[role] = row
        session.flush()
        return {role: row for role, row in by_role.items() if role}

    def inbox_id(self, session: Session) -> str:
        return self.ensure_standard_folders(session)["inbox"].id

    def list_folders(self) -> list[Folder]:
        with session_scope(self.engine) as session:
            self.ensure_standard_folders(session)
            rows = session.exec(
                select(Pop3Folder).where(Pop3Folder.account_id == self.account_id)
            ).all()
            counts = {
                folder_id: (int(total), int(unread or 0))
                for folder_id, total, unread in session.execute(
                    select(
                        Pop3Message.folder_id,
                        func.count(),
                        func.sum(sa_case_unread()),
                    )
                    .where(
                        Pop3Message.account_id == self.account_id,
                        col(Pop3Message.purged).is_(False),
                    )
                    .group_by(Pop3Message.folder_id)
                ).all()
            }
            by_id = {row.id: row for row in rows}
            folders = [self._folder(row, by_id, counts.get(row.id, (0, 0))) for row in rows]
        folders.sort(key=lambda f: (f.role != "inbox", f.path.lower()))
        return folders

    def _path(self, row: Pop3Folder, by_id: dict[str, Pop3Folder]) -> str:
        parts, seen = [row.name], {row.id}
        parent = by_id.get(row.parent_id or "")
        while parent is not None and parent.id not in seen:
            parts.append(parent.name)
            seen.add(parent.id)
            parent = by_id.get(parent.parent_id or "")
        return "/".join(reversed(parts))

    def _folder(
        self, row: Pop3Folder, by_id: dict[str, Pop3Folder], counts: tuple[int, int]
    ) -> Folder:
        return Folder(
            id=row.id,
            name=row.name,
            path=self._path(row, by_id),
            delimiter="/",
            parent_id=row.parent_id,
            role=row.role,  # type: ignore[arg-type]
            total=counts[0],
            unread=counts[1],
        )

    def _load_folder(self, session: Session, folder_id: str) -> Pop3Folder:
        row = session.get(Pop3Folder, folder_id)
        if row is None or row.account_id != self.account_id:
            raise NotFound("folder")
        return row

    def _check_name(
        self, session: Session, name: str, parent_id: str | None, skip: str = ""
    ) -> str:
        name = name.strip()
        if not name or "/" in name or len(name) > 200:
            raise InvalidRequest("a folder name needs 1 to 200 characters and no '/'")
        siblings = session.exec(
            select(Pop3Folder).where(
                Pop3Folder.account_id == self.account_id, Pop3Folder.parent_id == parent_id
            )
        ).all()
        if any(s.name.lower() == name.lower() and s.id != skip for s in siblings):
            raise AlreadyExists(f"a folder {name!r} exists already there")
        return name

    def create_folder(self, name: str, parent_id: str | None) -> Folder:
        with session_scope(self.engine) as session:
            self.ensure_standard_folders(session)
            if parent_id is not None:
                self._load_folder(session, parent_id)
            row = Pop3Folder(
                id=new_id("fld"),
                account_id=self.account_id,
                name=self._check_name(session, name, parent_id),
                parent_id=parent_id,
            )
            session.add(row)
            folder_id = row.id
        return self.get_folder(folder_id)

    def get_folder(self, folder_id: str) -> Folder:
        for folder in self.list_folders():
            if folder.id == folder_id:
                return folder
        raise NotFound("folder")

    def rename_folder(
        self, folder_id: str, name: str | None, parent_id: str | None, keep_parent: bool = False
    ) -> Folder:
        with session_scope(self.engine) as session:
            row = self._load_folder(session, folder_id)
            if row.role == "inbox":
                raise InvalidRequest("INBOX cannot be renamed")
            name = row.name if name is None else name
            parent_id = row.parent_id if keep_parent else parent_id
            ancestor = parent_id
            while ancestor is not None:
                if ancestor == folder_id:
                    raise InvalidRequest("a folder cannot move into itself")
                ancestor = self._load_folder(session, ancestor).parent_id
            row.name = self._check_name(session, name, parent_id, skip=folder_id)
            row.parent_id = parent_id
            session.add(row)
        return self.get_folder(folder_id)

    def delete_folder(self, folder_id: str) -> None:
        """Delete the folder, its subfolders and their messages (purged, as IMAP would)."""
        with session_scope(self.engine) as session:
            row = self._load_folder(session, folder_id)
            if row.role == "inbox":
                raise InvalidRequest("INBOX cannot be deleted")
            doomed, frontier = {row.id}, [row.id]
            while frontier:
                children = session.exec(
                    select(Pop3Folder).where(
                        Pop3Folder.account_id == self.account_id,
                        col(Pop3Folder.parent_id).in_(frontier),
                    )
                ).all()
                frontier = [c.id for c in children if c.id not in doomed]
                doomed.update(frontier)
            for message in session.exec(
                select(Pop3Message).where(
                    Pop3Message.account_id == self.account_id,
                    col(Pop3Message.folder_id).in_(doomed),
                    col(Pop3Message.purged).is_(False),
                )
            ).all():
                _purge(message)
                session.add(message)
            for doomed_id in doomed:
                session.delete(session.get(Pop3Folder, doomed_id))

    # -- messages ----------------------------------------------------------------------

    def _load(self, session: Session, message_id: str) -> Pop3Message:
        row = session.exec(select(Pop3Message).where(Pop3Message.id == message_id)).first()
        if row is None or row.account_id != self.account_id or row.purged:
            raise NotFound("message")
        return row

    def list_messages(
        self, folder_id: str | None, filters: MessageFilter, limit: int, cursor: str | None
    ) -> MessagePage:
        fingerprint = filter_fingerprint(filters.model_dump(exclude_none=True))
        if filters.from_ or filters.to or filters.subject or filters.text:
            self.describe_pending()  # these filters read the described columns
        with session_scope(self.engine) as session:
            folder_id = folder_id or self.inbox_id(session)
            self._load_folder(session, folder_id)
            query = select(Pop3Message).where(
                Pop3Message.account_id == self.account_id,
                Pop3Message.folder_id == folder_id,
                col(Pop3Message.purged).is_(False),
            )
            if cursor is not None:
                decoded = Cursor.decode(cursor)
                if decoded is None or decoded.folder != folder_id or decoded.filters != fingerprint:
                    raise InvalidCursor(
                        "the cursor does not belong to this folder and these filters"
                    )
                query = query.where(col(Pop3Message.seq) < decoded.before)
            query = _filtered(query, filters)
            rows = session.exec(query.order_by(col(Pop3Message.seq).desc()).limit(limit + 1)).all()
            page = rows[:limit]
            for row in page:
                if not row.described:
                    _describe_row(row)
                    session.add(row)
            next_cursor = None
            if len(rows) > limit and page:
                next_cursor = Cursor(folder_id, 0, int(page[-1].seq or 0), fingerprint).encode()
            return MessagePage(items=[summary(row) for row in page], next_cursor=next_cursor)

    def get_message(self, message_id: str, mark_seen: bool) -> Message:
        with session_scope(self.engine) as session:
            row = self._load(session, message_id)
            if mark_seen and not row.seen:
                row.seen = True
            _describe_row(row)
            session.add(row)
            parsed = parse_message(row.raw)
            return to_message(summary(row), parsed)

    def raw(self, message_id: str) -> bytes:
        with session_scope(self.engine) as session:
            return self._load(session, message_id).raw

    def summary(self, message_id: str) -> MessageSummary:
        with session_scope(self.engine) as session:
            row = self._load(session, message_id)
            _describe_row(row)
            return summary(row)

    def change(self, message_ids: Iterable[str], change: MessageChange) -> dict[str, bool]:
        found: dict[str, bool] = {}
        with session_scope(self.engine) as session:
            for message_id in message_ids:
                try:
                    row = self._load(session, message_id)
                except NotFound:
                    found[message_id] = False
                    continue
                for name in _SYSTEM_FLAGS:
                    value = getattr(change, name)
                    if value is not None:
                        setattr(row, name, value)
                keywords = set(json.loads(row.keywords)) | set(change.keywords_add)
                keywords -= set(change.keywords_remove)
                row.keywords = json.dumps(sorted(keywords))
                session.add(row)
                found[message_id] = True
        return found

    def move(self, message_ids: Iterable[str], folder_id: str) -> dict[str, bool]:
        found: dict[str, bool] = {}
        with session_scope(self.engine) as session:
            self._target(session, folder_id)
            for message_id in message_ids:
                try:
                    row = self._load(session, message_id)
                except NotFound:
                    found[message_id] = False
                    continue
                row.folder_id = folder_id
                session.add(row)
                found[message_id] = True
        return found

    def _target(self, session: Session, folder_id: str) -> Pop3Folder:
        try:
            return self._load_folder(session, folder_id)
        except NotFound:
            raise InvalidRequest("the target folder does not exist") from None

    def copy(self, message_id: str, folder_id: str) -> MessageSummary:
        with session_scope(self.engine) as session:
            self._target(session, folder_id)
            source = self._load(session, message_id)
            _describe_row(source)
            data = source.model_dump(exclude={"seq", "id", "uidl", "folder_id", "on_server"})
            clone = Pop3Message(**data, id=new_id("msg"), folder_id=folder_id, on_server=False)
            session.add(clone)
            session.flush()
            return summary(clone)

    def trash_id(self) -> str:
        with session_scope(self.engine) as session:
            return self.ensure_standard_folders(session)["trash"].id

    def purge(self, message_ids: Iterable[str]) -> tuple[dict[str, bool], list[str]]:
        """Purge for good; returns which ids existed and the UIDLs still on the server."""
        found: dict[str, bool] = {}
        uidls: list[str] = []
        with session_scope(self.engine) as session:
            for message_id in message_ids:
                try:
                    row = self._load(session, message_id)
                except NotFound:
                    found[message_id] = False
                    continue
                if row.uidl and row.on_server:
                    uidls.append(row.uidl)
                _purge(row)
                session.add(row)
                found[message_id] = True
        return found, uidls

    def folder_of(self, message_id: str) -> str:
        with session_scope(self.engine) as session:
            return self._load(session, message_id).folder_id


def _describe_row(row: Pop3Message) -> None:
    if not row.described:
        for name, value in describe(row.raw).items():
            setattr(row, name, value)
        row.described = True


def _purge(row: Pop3Message) -> None:
    """A tombstone: the UIDL stays known (never downloaded again), the content goes."""
    row.purged = True
    row.raw = b""
    row.search_text = ""
    row.preview = ""


def sa_case_unread() -> Any:
    return case((col(Pop3Message.seen).is_(False), 1), else_=0)


def _like(value: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(query: Any, filters: MessageFilter) -> Any:
    if filters.unread is not None:
        query = query.where(col(Pop3Message.seen).is_(not filters.unread))
    if filters.flagged is not None:
        query = query.where(col(Pop3Message.flagged).is_(filters.flagged))
    if filters.from_:
        query = query.where(col(Pop3Message.from_text).like(_like(filters.from_), escape="\\"))
    if filters.to:
        query = query.where(col(Pop3Message.to_text).like(_like(filters.to), escape="\\"))
    if filters.subject:
        query = query.where(
            func.lower(col(Pop3Message.subject)).like(_like(filters.subject), escape="\\")
        )
    if filters.text:
        query = query.where(col(Pop3Message.search_text).like(_like(filters.text), escape="\\"))
    if filters.since is not None:
        query = query.where(col(Pop3Message.received_at) >= filters.since)
    if filters.before is not None:
        query = query.where(col(Pop3Message.received_at) < filters.before)
    return query


def summary(row: Pop3Message) -> MessageSummary:
    addresses = json.loads(row.addresses or "{}")
    return MessageSummary(
        id=row.id,
        folder_id=row.folder_id,
        subject=row.subject,
        from_=addresses.get("from_", []),
        to=addresses.get("to", []),
        cc=addresses.get("cc", []),
        date=as_utc(row.date or row.received_at),
        received_at=as_utc(row.received_at),
        size=row.size,
        flags=Flags(seen=row.seen, flagged=row.flagged, answered=row.answered, draft=row.draft),
        keywords=json.loads(row.keywords or "[]"),
        has_attachments=row.has_attachments,
        preview=row.preview,
    )


__all__ = ["MailStore", "describe", "summary"]
