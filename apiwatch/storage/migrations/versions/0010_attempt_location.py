"""Each connection attempt says where it was probed from (`connection_attempts.location`,
the worker's APIWATCH_LOCATION), so results from several locations can be told apart.
Rows stored before this revision, and every row without locations, hold "". Frozen like
the others: types spelled out.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: both engines add it in place, without
    # copying the largest table (batch mode would recreate it on SQLite).
    op.add_column(
        "connection_attempts",
        sa.Column("location", sa.String(length=64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("connection_attempts") as batch:
        batch.drop_column("location")
