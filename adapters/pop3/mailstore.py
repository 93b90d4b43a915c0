"""The server-side state POP3 lacks, kept in Mailgate's store: folders, flags, keywords,
moves, copies, deletions. Everything here is one account's view; nothing talks POP3."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from email.parser import BytesParser
from email.policy import compat32
from typing import Any

from sqlalchemy import Integer, bindparam, func, insert, update
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailgate.adapters.mime import parse_message, to_message
from mailgate.adapters.pop3.folders import FolderStore
from mailgate.adapters.pop3.rows import (
    SUMMARY_COLUMNS,
    describe_row,
    listed_summary,
    purge_row,
    summary,
)
from mailgate.domain.errors import InvalidCursor, NotFound
from mailgate.domain.ids import Cursor, filter_fingerprint, new_id
from mailgate.domain.mail import (
    Message,
    MessageChange,
    MessageFilter,
    MessagePage,
    MessageSummary,
)
from mailgate.store.db import read_session, session_scope
from mailgate.store.models import Pop3Message, utcnow

_SYSTEM_FLAGS = ("seen", "flagged", "answered", "draft")
_HEADERS = BytesParser(policy=compat32)


class MailStore:
    def __init__(self, engine: Engine, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id
        self.folders = FolderStore(engine, account_id)

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
                    describe_row(row)
                    session.add(row)
            done += len(rows)
            if len(rows) < batch:
                return done

    # -- messages ----------------------------------------------------------------------

    def _each(
        self, session: Session, message_ids: Iterable[str], found: dict[str, bool]
    ) -> Iterator[Pop3Message]:
        """The rows of these ids; ``found`` records which ids named a message."""
        for message_id in message_ids:
            try:
                row = self._load(session, message_id)
            except NotFound:
                found[message_id] = False
                continue
            found[message_id] = True
            yield row

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
        with read_session(self.engine) as session:  # a read: no BEGIN and COMMIT around it
            if folder_id is None:
                folder_id = self.folders.inbox_id(session)
            else:
                self.folders.load(session, folder_id)
            query = _PAGE
            if cursor is not None:
                decoded = Cursor.decode(cursor)
                if decoded is None or decoded.folder != folder_id or decoded.filters != fingerprint:
                    raise InvalidCursor(
                        "the cursor does not belong to this folder and these filters"
                    )
                query = query.where(col(Pop3Message.seq) < decoded.before)
            query = _filtered(query, filters)
            parameters = {"account_id": self.account_id, "folder_id": folder_id, "limit": limit + 1}
            # on the connection, as Core: the columns need none of the ORM's result machinery
            rows = session.connection().execute(query, parameters).all()
        page = rows[:limit]
        described = self._described([row.seq for row in page if not row.described])
        items = [
            summary(described[row.seq]) if row.seq in described else listed_summary(row)
            for row in page
        ]
        next_cursor = None
        if len(rows) > limit and page:
            next_cursor = Cursor(folder_id, 0, int(page[-1].seq or 0), fingerprint).encode()
        return MessagePage(items=items, next_cursor=next_cursor)

    def _described(self, seqs: list[int]) -> dict[int, Pop3Message]:
        """Messages not yet described (just downloaded), by seq: their columns are filled
        in from raw now, and kept."""
        if not seqs:
            return {}
        with session_scope(self.engine) as session:
            rows = {}
            for seq in seqs:
                row = session.get(Pop3Message, seq)
                if row is not None:  # else gone since it was listed (its account deleted)
                    describe_row(row)
                    session.add(row)
                    rows[seq] = row
        return rows

    def get_message(self, message_id: str) -> Message:
        with session_scope(self.engine) as session:
            row = self._load(session, message_id)
            describe_row(row)
            session.add(row)
            parsed = parse_message(row.raw)
            return to_message(summary(row), parsed)

    def raw(self, message_id: str) -> bytes:
        with session_scope(self.engine) as session:
            return self._load(session, message_id).raw

    def summary(self, message_id: str) -> MessageSummary:
        with session_scope(self.engine) as session:
            row = self._load(session, message_id)
            describe_row(row)
            return summary(row)

    def find_by_message_id(
        self, role: str, message_id: str, within: int = 200
    ) -> MessageSummary | None:
        """Among the ``within`` newest messages of the folder with ``role`` (the store keeps
        no Message-ID column: what is looked for was put there moments ago)."""
        with session_scope(self.engine) as session:
            folder = self.folders.ensure_standard_folders(session).get(role)
            if folder is None:
                return None
            rows = session.exec(
                select(Pop3Message)
                .where(
                    Pop3Message.account_id == self.account_id,
                    Pop3Message.folder_id == folder.id,
                    col(Pop3Message.purged).is_(False),
                )
                .order_by(col(Pop3Message.seq).desc())
                .limit(within)
            ).all()
            for row in rows:
                headers = _HEADERS.parsebytes(row.raw, headersonly=True)
                if str(headers.get("Message-ID", "")).strip() == message_id:
                    describe_row(row)
                    return summary(row)
        return None

    def change(self, message_ids: Iterable[str], change: MessageChange) -> dict[str, bool]:
        found: dict[str, bool] = {}
        with session_scope(self.engine) as session:
            for row in self._each(session, message_ids, found):
                for name in _SYSTEM_FLAGS:
                    value = getattr(change, name)
                    if value is not None:
                        setattr(row, name, value)
                keywords = set(json.loads(row.keywords)) | set(change.keywords_add)
                keywords -= set(change.keywords_remove)
                row.keywords = json.dumps(sorted(keywords))
                session.add(row)
        return found

    def move(self, message_ids: Iterable[str], folder_id: str) -> dict[str, bool]:
        found: dict[str, bool] = {}
        with session_scope(self.engine) as session:
            self.folders.target(session, folder_id)
            for row in self._each(session, message_ids, found):
                row.folder_id = folder_id
                session.add(row)
        return found

    def copy(self, message_id: str, folder_id: str) -> MessageSummary:
        with session_scope(self.engine) as session:
            self.folders.target(session, folder_id)
            source = self._load(session, message_id)
            describe_row(source)
            data = source.model_dump(exclude={"seq", "id", "uidl", "folder_id", "on_server"})
            clone = Pop3Message(**data, id=new_id("msg"), folder_id=folder_id, on_server=False)
            session.add(clone)
            session.flush()
            return summary(clone)

    def add(self, raw: bytes, role: str, *, seen: bool, draft: bool) -> MessageSummary:
        """A message of Mailgate's own (never on the server) into the folder with ``role``."""
        with session_scope(self.engine) as session:
            folder = self.folders.ensure_standard_folders(session)[role]
            row = Pop3Message(
                **{
                    **self.downloaded_row("", raw, folder.id),
                    "uidl": None,
                    "on_server": False,
                    "seen": seen,
                    "draft": draft,
                }
            )
            describe_row(row)
            session.add(row)
            session.flush()
            return summary(row)

    def purge(self, message_ids: Iterable[str]) -> tuple[dict[str, bool], list[str]]:
        """Purge for good; returns which ids existed and the UIDLs still on the server."""
        found: dict[str, bool] = {}
        uidls: list[str] = []
        with session_scope(self.engine) as session:
            for row in self._each(session, message_ids, found):
                if row.uidl and row.on_server:
                    uidls.append(row.uidl)
                purge_row(row)
                session.add(row)
        return found, uidls

    def folder_of(self, message_id: str) -> str:
        with session_scope(self.engine) as session:
            return self._load(session, message_id).folder_id

    # -- what a sync brings: new mail, and what changed on the server -----------------------

    def known_by_uidl(self) -> dict[str, Pop3Message]:
        """Every message that came from the server, by UIDL (bookkeeping columns only: the
        rows are detached, and their raw is never read)."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(Pop3Message).where(
                    Pop3Message.account_id == self.account_id,
                    col(Pop3Message.uidl).is_not(None),
                )
            ).all()
            for row in rows:
                session.expunge(row)
            return {row.uidl: row for row in rows if row.uidl}

    def downloaded_row(self, uidl: str, raw: bytes, folder_id: str) -> dict[str, Any]:
        """The row of a message just downloaded; described later, off the download path."""
        return {
            "id": new_id("msg"),
            "account_id": self.account_id,
            "folder_id": folder_id,
            "uidl": uidl,
            "raw": raw,
            "received_at": utcnow(),
            "seen": False,
            "flagged": False,
            "answered": False,
            "draft": False,
            "keywords": "[]",
            "on_server": True,
            "purged": False,
            "size": len(raw),
            "described": False,
        }

    @staticmethod
    def add_downloaded(session: Session, rows: list[dict[str, Any]]) -> None:
        """Store a batch of downloaded messages in one multi-row INSERT (sync throughput)."""
        session.connection().execute(insert(Pop3Message), rows)

    def mark_gone(self, session: Session, message_ids: list[str], purge: bool) -> list[str]:
        """Messages another client removed from the server: kept, or (``purge``) purged
        here too. Returns the ids purged."""
        purged: list[str] = []
        for row in session.exec(select(Pop3Message).where(col(Pop3Message.id).in_(message_ids))):
            row.on_server = False
            if purge and not row.purged:
                purge_row(row)
                purged.append(row.id)
            session.add(row)
        return purged

    def mark_off_server(self, uidls: list[str]) -> None:
        """The server deleted these (our DELEs took effect at QUIT)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(Pop3Message)
                .where(
                    col(Pop3Message.account_id) == self.account_id,
                    col(Pop3Message.uidl).in_(uidls),
                )
                .values(on_server=False)
            )


# A page of one folder, newest first: built once, with bound parameters (its SQL and cache
# key are not made again on every list); a cursor and filters add their conditions to it.
_PAGE = (
    select_columns(*SUMMARY_COLUMNS)
    .where(
        col(Pop3Message.account_id) == bindparam("account_id"),
        col(Pop3Message.folder_id) == bindparam("folder_id"),
        col(Pop3Message.purged).is_(False),
    )
    .order_by(col(Pop3Message.seq).desc())
    .limit(bindparam("limit", type_=Integer))
)


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
