"""pop3 first sync: the server's message count as a sync began

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 10:00:00

While an account's first sync has not finished (``last_sync_at`` null), the account and its
lists say so, with how many of the server's messages are stored (store.first_sync); the
server's count is what UIDL listed as the last session began.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pop3_sync_state") as batch:
        batch.add_column(sa.Column("messages_on_server", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pop3_sync_state") as batch:
        batch.drop_column("messages_on_server")
