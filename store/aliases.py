"""The message alias table behind :class:`adapters.base.AliasStore`."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam
from sqlalchemy.engine import Engine
from sqlmodel import col, delete, select

from mailgate.domain.ids import MessageLocation
from mailgate.store.db import read_connection, session_scope
from mailgate.store.models import MessageAlias

_RESOLVE = select(
    col(MessageAlias.account_id),
    col(MessageAlias.folder_path),
    col(MessageAlias.uidvalidity),
    col(MessageAlias.uid),
).where(col(MessageAlias.id) == bindparam("id"))


class SqlAliasStore:
    def __init__(self, engine: Engine, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id

    def resolve(self, message_id: str) -> MessageLocation | None:
        """Asked by every read of an IMAP message: one Core SELECT, no ORM object."""
        with read_connection(self.engine) as connection:
            row = connection.execute(_RESOLVE, {"id": message_id}).first()
        if row is None or row.account_id != self.account_id:
            return None
        return MessageLocation(row.folder_path, row.uidvalidity, row.uid)

    def ids_at(self, path: str, uidvalidity: int, uids: Iterable[int]) -> dict[int, str]:
        wanted = list(uids)
        if not wanted:
            return {}
        with read_connection(self.engine) as connection:
            rows = connection.execute(
                select(col(MessageAlias.uid), col(MessageAlias.id)).where(
                    MessageAlias.account_id == self.account_id,
                    MessageAlias.folder_path == path,
                    MessageAlias.uidvalidity == uidvalidity,
                    col(MessageAlias.uid).in_(wanted),
                )
            ).all()
        return {row.uid: row.id for row in rows}

    def record(self, message_id: str, location: MessageLocation) -> None:
        with session_scope(self.engine) as session:
            row = session.get(MessageAlias, message_id) or MessageAlias(
                id=message_id, account_id=self.account_id, folder_path="", uidvalidity=0, uid=0
            )
            row.folder_path = location.path
            row.uidvalidity, row.uid = location.uidvalidity, location.uid
            session.add(row)

    def forget(self, message_id: str) -> None:
        with session_scope(self.engine) as session:
            session.exec(delete(MessageAlias).where(col(MessageAlias.id) == message_id))
