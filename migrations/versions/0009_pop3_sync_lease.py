"""pop3 sync lease: the shared lease table replaces pop3_sync_state.running_since

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pop3_sync_state") as batch:
        batch.drop_column("running_since")


def downgrade() -> None:
    with op.batch_alter_table("pop3_sync_state") as batch:
        batch.add_column(sa.Column("running_since", sa.DateTime(timezone=True), nullable=True))
