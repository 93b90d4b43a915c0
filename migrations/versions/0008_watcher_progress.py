"""watcher progress: folder UID sets, the gateway's own changes, leases

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imap_folder_state") as batch:
        batch.add_column(sa.Column("messages", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("uids", sa.Text(), nullable=True))
    op.create_table(
        "imap_own_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("folder_path", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("change", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_imap_own_change_account_id"), "imap_own_change", ["account_id"], unique=False
    )
    op.create_table(
        "lease",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("lease")
    op.drop_index(op.f("ix_imap_own_change_account_id"), table_name="imap_own_change")
    op.drop_table("imap_own_change")
    with op.batch_alter_table("imap_folder_state") as batch:
        batch.drop_column("uids")
        batch.drop_column("messages")
