"""The folders of a POP3 account, which POP3 itself does not have: INBOX plus the standard
ones (made on first need) and the user's own, kept in Mailgate's store."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailgate.adapters.pop3.rows import purge_row, unread_case
from mailgate.domain.errors import AlreadyExists, InvalidRequest, NotFound
from mailgate.domain.ids import new_id
from mailgate.domain.mail import Folder
from mailgate.store.db import session_scope
from mailgate.store.models import Pop3Folder, Pop3Message

STANDARD_FOLDERS = (
    ("INBOX", "inbox"),
    ("Sent", "sent"),
    ("Drafts", "drafts"),
    ("Trash", "trash"),
    ("Junk", "junk"),
    ("Archive", "archive"),
)
# set in a session's info once it has added standard folders (uncommitted until it commits)
_MADE_FOLDERS = "mailgate.pop3.made_folders"


class FolderStore:
    def __init__(self, engine: Engine, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id
        # INBOX can be neither renamed nor deleted, and an account id is never reused: once
        # found, its id holds for the life of this (per-account) object
        self._inbox_id: str | None = None

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
                session.info[_MADE_FOLDERS] = True
        session.flush()
        return {role: row for role, row in by_role.items() if role}

    def inbox_id(self, session: Session) -> str:
        """The INBOX's id; the standard folders are made (:meth:`ensure_standard_folders`)
        the first time this object is asked, not on every list."""
        if self._inbox_id is not None:
            return self._inbox_id
        inbox_id = self.ensure_standard_folders(session)["inbox"].id
        if not session.info.get(_MADE_FOLDERS):  # else not committed yet: may roll back
            self._inbox_id = inbox_id
        return inbox_id

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
                        func.sum(unread_case()),
                    )
                    .where(
                        Pop3Message.account_id == self.account_id,
                        col(Pop3Message.purged).is_(False),
                    )
                    .group_by(Pop3Message.folder_id)
                ).all()
            }
            by_id = {row.id: row for row in rows}
            folders = [self._model(row, by_id, counts.get(row.id, (0, 0))) for row in rows]
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

    def _model(
        self, row: Pop3Folder, by_id: dict[str, Pop3Folder], counts: tuple[int, int]
    ) -> Folder:
        return Folder(
            id=row.id,
            name=row.name,
            path=self._path(row, by_id),
            delimiter="/",
            parent_id=row.parent_id,
            role=row.role,
            total=counts[0],
            unread=counts[1],
        )

    def load(self, session: Session, folder_id: str) -> Pop3Folder:
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
                self.load(session, parent_id)
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
            row = self.load(session, folder_id)
            if row.role == "inbox":
                raise InvalidRequest("INBOX cannot be renamed")
            name = row.name if name is None else name
            parent_id = row.parent_id if keep_parent else parent_id
            ancestor = parent_id
            while ancestor is not None:
                if ancestor == folder_id:
                    raise InvalidRequest("a folder cannot move into itself")
                ancestor = self.load(session, ancestor).parent_id
            row.name = self._check_name(session, name, parent_id, skip=folder_id)
            row.parent_id = parent_id
            session.add(row)
        return self.get_folder(folder_id)

    def delete_folder(self, folder_id: str) -> None:
        """Delete the folder, its subfolders and their messages (purged, as IMAP would)."""
        with session_scope(self.engine) as session:
            row = self.load(session, folder_id)
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
                purge_row(message)
                session.add(message)
            for doomed_id in doomed:
                session.delete(session.get(Pop3Folder, doomed_id))

    def trash_id(self) -> str:
        with session_scope(self.engine) as session:
            return self.ensure_standard_folders(session)["trash"].id

    def target(self, session: Session, folder_id: str) -> Pop3Folder:
        try:
            return self.load(session, folder_id)
        except NotFound:
            raise InvalidRequest("the target folder does not exist") from None
