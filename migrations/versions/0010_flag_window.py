"""imap flag window: the watched window's flags on servers without CONDSTORE

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imap_folder_state") as batch:
        batch.add_column(sa.Column("flag_window", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("imap_folder_state") as batch:
        batch.drop_column("flag_window")
