"""Everything the service layer needs, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from mailgate.domain.keys import KeyGrant
from mailgate.gateway.cache import TtlCache
from mailgate.gateway.crypto import PasswordBox, load_password_box
from mailgate.gateway.mailboxes import Mailboxes
from mailgate.gateway.metrics import Metrics
from mailgate.gateway.oauth2.provider import Provider
from mailgate.gateway.settings import Settings
from mailgate.store.db import make_engine
from mailgate.store.migrate import current_revision, head_revision, upgrade


@dataclass
class Gateway:
    settings: Settings
    engine: Engine
    passwords: PasswordBox
    mailboxes: Mailboxes = field(init=False)
    key_cache: TtlCache[KeyGrant] = field(init=False)  # by key digest, and by key id
    oauth2: Provider = field(init=False)
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.oauth2 = Provider(self.settings.allow_private_mailboxes)
        self.metrics = Metrics(self.engine)
        self.mailboxes = Mailboxes(
            self.settings,
            self.engine,
            self.passwords,
            self.oauth2,
            observer=self.metrics.mailbox_operation,
        )
        self.key_cache = TtlCache(seconds=self.settings.api_key_cache_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        return cls(
            settings=settings,
            engine=make_engine(settings.resolved_database_url),
            passwords=load_password_box(settings.secret_key, settings.data_dir),
        )

    @classmethod
    def offline(cls) -> Gateway:
        """A gateway on an empty in-memory database, for what needs the app but no data
        (the OpenAPI document)."""
        from cryptography.fernet import Fernet

        return cls(
            settings=Settings(),
            engine=make_engine("sqlite://"),
            passwords=PasswordBox([Fernet.generate_key()]),
        )

    def schema_behind(self) -> str | None:
        """Why the database is not at the schema this version runs on (migrations running
        or pending), or None when it is; raises when the database cannot be reached."""
        with self.engine.connect() as connection:
            at = current_revision(connection)
        if at == head_revision():
            return None
        return (
            f"The database schema is at {at or 'nothing'}; this version runs on "
            f"{head_revision()} (migrations running or pending: `mailgate migrate`)."
        )

    def migrate(self) -> None:
        """Bring the database schema up to date."""
        upgrade(self.engine)

    def close(self) -> None:
        self.mailboxes.close()
        self.oauth2.close()
        self.engine.dispose()
