"""Refused API requests are counted per reason as well (`api_refusals.reason`): a 401 is a
missing or an invalid key, a 403 an inactive key or a read key on an admin route, a 429 a
key over one of its windows or an address throttled for failed keys. Rows counted before
this revision get "unknown". Frozen like the others: types spelled out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode on SQLite (set in env.py) recreates the table; PostgreSQL adds the column.
    with op.batch_alter_table("api_refusals") as batch:
        batch.add_column(
            sa.Column("reason", sa.String(length=32), nullable=False, server_default="unknown")
        )


def downgrade() -> None:
    with op.batch_alter_table("api_refusals") as batch:
        batch.drop_column("reason")
