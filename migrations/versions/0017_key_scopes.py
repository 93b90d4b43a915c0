"""API keys with scopes, account bindings, expiry and rate limits; the rate counters

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 12:00:00

Keys made before had the run of their tenant: they become `admin` keys, unbound, never
expiring. ``rate_counter`` holds each key's (and each client address's bad keys') count in
the current minute, shared by every process (unlogged on PostgreSQL: counts need no durability).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("scopes", sa.String(64), nullable=False, server_default="admin"))
        batch.add_column(sa.Column("account_ids", sa.Text(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "rate_counter",
        sa.Column("subject", sa.String(100), primary_key=True),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # One write a request: unlogged, its commits wait for no WAL flush (6 ms a request
        # on this machine's disk otherwise). A crash of PostgreSQL forgets the counts.
        op.execute("ALTER TABLE rate_counter SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("rate_counter")
    with op.batch_alter_table("api_key") as batch:
        for column in (
            "last_used_at",
            "rate_limit_per_minute",
            "expires_at",
            "account_ids",
            "scopes",
            "name",
        ):
            batch.drop_column(column)
