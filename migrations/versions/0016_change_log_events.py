"""change log events: the event body of each change, for the event streams (SSE)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 10:00:00

``GET /v1/accounts/{id}/events`` replays what webhooks carry from the change log, resuming
at a change state: each row keeps the event body of its change. Rows from before have none
and are no events (a client resuming from before this revision misses nothing it could have
had: there were no streams).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("change_log") as batch:
        batch.add_column(sa.Column("event", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("change_log") as batch:
        batch.drop_column("event")
