"""change states per account: a counter of its own for each account's change log

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 19:10:00

The state a client holds was the global log position, so a tenant could watch it grow with
every other tenant's changes. Each account now numbers its changes 1, 2, 3, ... The API
writes these states as ``s<number>``: a state of the old, bare-number kind is unknown and
answers 410 ``cannot-calculate-changes`` (resync), never a wrong delta.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("change_log") as batch:
        batch.add_column(sa.Column("account_seq", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE change_log SET account_seq = numbered.n FROM ("
        " SELECT seq, row_number() OVER (PARTITION BY account_id ORDER BY seq) AS n"
        " FROM change_log) AS numbered WHERE change_log.seq = numbered.seq"
    )
    with op.batch_alter_table("change_log") as batch:
        batch.alter_column("account_seq", existing_type=sa.Integer(), nullable=False)
        batch.drop_index("ix_change_log_account_seq")
        batch.create_index(
            "ix_change_log_account_state", ["account_id", "account_seq"], unique=True
        )
    op.create_table(
        "change_counter",
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.execute(
        "INSERT INTO change_counter (account_id, last)"
        " SELECT account_id, MAX(account_seq) FROM change_log GROUP BY account_id"
    )


def downgrade() -> None:
    op.drop_table("change_counter")
    with op.batch_alter_table("change_log") as batch:
        batch.drop_index("ix_change_log_account_state")
        batch.create_index("ix_change_log_account_seq", ["account_id", "seq"])
        batch.drop_column("account_seq")
