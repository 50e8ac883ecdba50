"""Checks per outcome in the probe roll-ups (`hourly_rollups.outcomes`, {outcome: count}),
so the 7-day and 30-day outcome charts show every outcome. Nullable: rows rolled up before
this revision have none and are read as ok/error only. Frozen like the others: types
spelled out.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch: SQLite cannot drop a column in place on downgrade; add works either way.
    with op.batch_alter_table("hourly_rollups") as batch:
        batch.add_column(sa.Column("outcomes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hourly_rollups") as batch:
        batch.drop_column("outcomes")
