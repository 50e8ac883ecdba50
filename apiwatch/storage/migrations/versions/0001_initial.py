"""The initial schema: every table (docs/operations.md) with its (provider, time) indexes.

Frozen on purpose: it spells out types instead of importing the models, so later model
changes need a new revision (a test compares `upgrade head` with the models).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    # BIGINT on PostgreSQL; SQLite autoincrements only a column typed exactly INTEGER.
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def _ts(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "providers",
        _str("id", 64),
        _str("name", 200),
        _str("category", 64),
        _str("base_url", 500),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_providers"),
    )

    op.create_table(
        "connection_attempts",
        _id(),
        _str("provider", 64),
        _str("endpoint", 128),
        _str("outcome", 32),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        _str("key_label", 64, nullable=True),
        sa.Column("response_bytes", sa.Integer(), nullable=True),
        _ts("started_at"),
        sa.PrimaryKeyConstraint("id", name="pk_connection_attempts"),
    )
    op.create_index(
        "ix_connection_attempts_provider_started_at",
        "connection_attempts",
        ["provider", "started_at"],
    )
    op.create_index(
        "ix_connection_attempts_outcome_started_at",
        "connection_attempts",
        ["outcome", "started_at"],
    )
    op.create_index("ix_connection_attempts_started_at", "connection_attempts", ["started_at"])

    op.create_table(
        "status_changes",
        _id(),
        _str("provider", 64),
        _str("old_status", 16),
        _str("new_status", 16),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("changed_at"),
        sa.PrimaryKeyConstraint("id", name="pk_status_changes"),
    )
    op.create_index(
        "ix_status_changes_provider_changed_at", "status_changes", ["provider", "changed_at"]
    )

    op.create_table(
        "data_collections",
        _id(),
        _str("provider", 64),
        _str("category", 64),
        _str("item", 200),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=True),
        _ts("data_timestamp", nullable=True),
        _ts("fetched_at"),
        sa.PrimaryKeyConstraint("id", name="pk_data_collections"),
    )
    op.create_index(
        "ix_data_collections_provider_fetched_at", "data_collections", ["provider", "fetched_at"]
    )

    op.create_table(
        "rate_limit_usage",
        _id(),
        _str("provider", 64),
        _str("window", 32),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        _str("source", 32),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint("id", name="pk_rate_limit_usage"),
    )
    op.create_index(
        "ix_rate_limit_usage_provider_recorded_at",
        "rate_limit_usage",
        ["provider", "recorded_at"],
    )

    op.create_table(
        "schedule_config",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("provider", 64),
        _str("category", 64),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_config"),
        sa.UniqueConstraint("provider", "category", name="uq_schedule_config_provider_category"),
    )

    op.create_table(
        "schedule_compliance",
        _id(),
        _str("provider", 64),
        _str("category", 64),
        _ts("planned_at"),
        _ts("started_at", nullable=True),
        sa.Column("lateness_ms", sa.Float(), nullable=True),
        _str("result", 32),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_compliance"),
    )
    op.create_index(
        "ix_schedule_compliance_provider_planned_at",
        "schedule_compliance",
        ["provider", "planned_at"],
    )

    op.create_table(
        "failure_logs",
        _id(),
        _str("provider", 64),
        _str("endpoint", 128),
        _str("outcome", 32),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _str("final_outcome", 32),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("first_at"),
        _ts("last_at"),
        sa.PrimaryKeyConstraint("id", name="pk_failure_logs"),
    )
    op.create_index("ix_failure_logs_provider_last_at", "failure_logs", ["provider", "last_at"])

    op.create_table(
        "alerts",
        _id(),
        _str("rule", 128),
        _str("provider", 64, nullable=True),
        _str("severity", 16),
        sa.Column("message", sa.Text(), nullable=False),
        _str("state", 16),
        _str("fingerprint", 128),
        _ts("fired_at"),
        _ts("sent_at", nullable=True),
        _ts("acknowledged_at", nullable=True),
        _str("acknowledged_by", 128, nullable=True),
        _ts("resolved_at", nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_provider_fired_at", "alerts", ["provider", "fired_at"])
    op.create_index("ix_alerts_fingerprint_state", "alerts", ["fingerprint", "state"])

    op.create_table(
        "system_metrics",
        _id(),
        _str("name", 128),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=True),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint("id", name="pk_system_metrics"),
    )
    op.create_index("ix_system_metrics_name_recorded_at", "system_metrics", ["name", "recorded_at"])


def downgrade() -> None:
    # Dropping a table drops its indexes on both backends.
    for table in (
        "system_metrics",
        "alerts",
        "failure_logs",
        "schedule_compliance",
        "schedule_config",
        "rate_limit_usage",
        "data_collections",
        "status_changes",
        "connection_attempts",
        "providers",
    ):
        op.drop_table(table)
