"""Refused API requests counted per minute, status and address prefix (`api_refusals`)
instead of one `api_usage` row each. Frozen like the others: types spelled out.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_refusals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client_prefix", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_refusals"),
    )
    op.create_index("ix_api_refusals_minute", "api_refusals", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_api_refusals_minute", table_name="api_refusals")
    op.drop_table("api_refusals")
