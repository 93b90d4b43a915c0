"""One typed settings object, read from the environment (prefix ``MAILGATE_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILGATE_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Where the SQLite file and key file live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file mailgate.db in the data dir."
    )
    secret_key: str | None = Field(
        None,
        description="Fernet key(s) for mailbox passwords, comma-separated (first encrypts); "
        "default: a 0600 key file generated in the data dir.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser."
    )
    connect_timeout: float = Field(15.0, gt=0, description="Seconds to reach a mail server.")
    command_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a mail server has to answer: an IMAP operation of a request must "
        "be done by then (its connection is dropped, the request answers 504); a POP3 server "
        "must send something within it.",
    )
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest accepted request body.")
    send_worker: bool = Field(
        True,
        description="Deliver queued messages from this process. `false` for processes that "
        "only serve the API while others send (they share the queue in the database).",
    )
    claim_ttl: float = Field(
        20.0,
        ge=1.0,
        description="Seconds a claim on a queued webhook or message lasts unless renewed (a "
        "heartbeat renews it every third of this while the work runs): a process that dies "
        "leaves its claimed work to the others within this.",
    )
    max_upload_bytes: int = Field(
        25 * 1024 * 1024,
        gt=0,
        le=256 * 1024 * 1024,
        description="Largest attachment upload, and the most all attachments of one message may "
        "come to (decoded).",
    )
    imap_pool_idle: float = Field(
        240.0,
        gt=0,
        description="Seconds an IMAP account's pooled connection may rest unused before it is "
        "closed (within 30 s more): an account nobody reads holds only its watcher's.",
    )
    pop3_sync_interval: float = Field(
        60.0, ge=0, description="A POP3 read syncs first when the last sync is older than this."
    )
    imap_poll_interval: float = Field(
        2.0,
        gt=0,
        description="Seconds between watch rounds over an IMAP account's folders (new mail in "
        "INBOX is seen at once through IDLE).",
    )
    api_key_cache_seconds: float = Field(
        10.0, ge=0, description="How long a checked API key is trusted without the database."
    )
    rate_limit_per_minute: int = Field(
        1200,
        ge=0,
        description="Requests an API key may make a minute (every process together, each "
        "writing its count in batches far from the limit), unless the key sets its own; more "
        "answer 429. 0: no limit.",
    )
    bad_keys_per_minute: int = Field(
        20,
        ge=0,
        description="Requests with an unknown API key one client address may make a minute; "
        "after them it is answered 429 until the minute ends. 0: no limit.",
    )
    allow_private_webhooks: bool = Field(False, description="Allow webhook URLs on private nets.")
    allow_private_mailboxes: bool = Field(
        True,
        description="Allow mailbox hosts on private, loopback and link-local addresses; turn "
        "off when tenants are not trusted with the gateway's own network.",
    )
    max_requests_per_tenant: int = Field(
        16, gt=0, description="Requests of one tenant served at once; more wait their turn."
    )
    max_requests_per_account: int = Field(
        8, gt=0, description="Requests for one mailbox served at once; more wait their turn."
    )
    events_heartbeat_interval: float = Field(
        15.0, gt=0, description="Seconds of silence after which an event stream sends a comment."
    )
    events_poll_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds between an event stream's looks at the change log for events of "
        "other processes (this process's own wake it at once).",
    )
    log_level: str = Field("INFO", description="Python logging level name.")
    log_format: str = Field("json", description="'json' (one object a line) or 'text'.")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, with a plain ``postgresql://`` routed to psycopg 3."""
        if not self.database_url:
            return f"sqlite:///{(self.data_dir / 'mailgate.db').resolve()}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
