"""claim owners: which worker holds a claimed webhook event or submission

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 10:00:00

Claims on outbox rows and submissions are short and renewed by a heartbeat while the work
runs (store.claims), so ``claimed_until`` moves and can no longer tell a holder its claim:
``claimed_by`` names the holder, and a holder records its outcome only while it is named.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("webhook_event", "submission"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
            )


def downgrade() -> None:
    for table in ("submission", "webhook_event"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("claimed_by")
