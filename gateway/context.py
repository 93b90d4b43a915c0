"""Everything the service layer needs, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from mailgate.gateway.cache import TtlCache
from mailgate.gateway.crypto import PasswordBox, load_password_box
from mailgate.gateway.mailboxes import Mailboxes
from mailgate.gateway.settings import Settings
from mailgate.store.db import make_engine


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    passwords: PasswordBox
    mailboxes: Mailboxes = field(init=False)
    key_cache: TtlCache = field(init=False)

    def __post_init__(self) -> None:
        self.mailboxes = Mailboxes(self.settings, self.engine, self.passwords)
        self.key_cache = TtlCache(seconds=self.settings.api_key_cache_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        return cls(
            settings=settings,
            engine=make_engine(settings.resolved_database_url),
            passwords=load_password_box(settings.secret_key, settings.data_dir),
        )

    def close(self) -> None:
        self.mailboxes.close()
        self.engine.dispose()
