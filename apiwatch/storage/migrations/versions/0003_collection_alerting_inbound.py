"""Collection, alerting and inbound tables: exact data values, alert lifecycle and
deliveries, silences, settings overrides, API keys and usage, hourly roll-ups.

`data_collections` and `alerts` are recreated: no release wrote to them before this
revision (collectors and alerting arrive with it), and SQLite cannot change a column type
in place. Frozen like 0001: types are spelled out rather than imported from the models.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
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
    op.drop_table("data_collections")
    op.create_table(
        "data_collections",
        _id(),
        _str("provider", 64),
        _str("category", 64),
        _str("item", 1024),
        _str("value", 64, nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=True),
        _ts("data_timestamp", nullable=True),
        _ts("fetched_at"),
        sa.PrimaryKeyConstraint("id", name="pk_data_collections"),
    )
    op.create_index(
        "ix_data_collections_provider_fetched_at", "data_collections", ["provider", "fetched_at"]
    )
    op.create_index(
        "ix_data_collections_item_fetched_at", "data_collections", ["item", "fetched_at"]
    )

    op.create_index(
        "ix_schedule_compliance_category_planned_at",
        "schedule_compliance",
        ["category", "planned_at"],
    )

    op.drop_table("alerts")
    op.create_table(
        "alerts",
        _id(),
        _str("rule", 128),
        _str("provider", 64, nullable=True),
        _str("category", 64, nullable=True),
        _str("severity", 16),
        sa.Column("message", sa.Text(), nullable=False),
        _str("state", 16),
        _str("fingerprint", 256),
        _str("group_key", 256, nullable=True),
        sa.Column("labels", sa.JSON(), nullable=True),
        sa.Column("suggested_action", sa.Text(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        _ts("fired_at"),
        _ts("sent_at", nullable=True),
        sa.Column("notifications", sa.Integer(), nullable=False),
        _ts("acknowledged_at", nullable=True),
        _str("acknowledged_by", 128, nullable=True),
        _ts("resolved_at", nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_provider_fired_at", "alerts", ["provider", "fired_at"])
    op.create_index("ix_alerts_fingerprint_state", "alerts", ["fingerprint", "state"])

    op.create_table(
        "alert_deliveries",
        _id(),
        _str("group_key", 256),
        sa.Column("alert_ids", sa.JSON(), nullable=False),
        _str("channel", 128),
        _str("kind", 32),
        _str("state", 16),
        _str("reason", 64),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retryable", sa.Boolean(), nullable=True),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
    )
    op.create_index("ix_alert_deliveries_group_key_at", "alert_deliveries", ["group_key", "at"])

    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        _ts("starts_at"),
        _ts("ends_at"),
        _str("created_by", 128),
        sa.Column("comment", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )

    op.create_table(
        "settings_overrides",
        _str("name", 64),
        sa.Column("value", sa.JSON(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_settings_overrides"),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("name", 128),
        _str("scope", 16),
        _str("key_hash", 64),
        _str("prefix", 16),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("minute_limit", sa.Integer(), nullable=True),
        sa.Column("hour_limit", sa.Integer(), nullable=True),
        sa.Column("day_limit", sa.Integer(), nullable=True),
        sa.Column("usage_count", sa.BigInteger(), nullable=False),
        _ts("last_used", nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )

    op.create_table(
        "api_usage",
        _id(),
        sa.Column("key_id", sa.Integer(), nullable=True),
        _str("key_name", 128, nullable=True),
        _str("route", 256),
        _str("method", 8),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        _str("client", 64, nullable=True),
        sa.Column("authorized", sa.Boolean(), nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name="pk_api_usage"),
    )
    op.create_index("ix_api_usage_key_id_at", "api_usage", ["key_id", "at"])
    op.create_index("ix_api_usage_at", "api_usage", ["at"])

    op.create_table(
        "hourly_rollups",
        _id(),
        _str("kind", 16),
        _str("subject", 64),
        _str("detail", 256),
        _ts("hour"),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.Column("latency_hist", sa.JSON(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p95_ms", sa.Float(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_hourly_rollups"),
        sa.UniqueConstraint(
            "kind", "subject", "detail", "hour", name="uq_hourly_rollups_kind_subject_detail_hour"
        ),
    )
    op.create_index("ix_hourly_rollups_kind_hour", "hourly_rollups", ["kind", "hour"])


def downgrade() -> None:
    for table in (
        "hourly_rollups",
        "api_usage",
        "api_keys",
        "settings_overrides",
        "silences",
        "alert_deliveries",
    ):
        op.drop_table(table)
    op.drop_index("ix_schedule_compliance_category_planned_at", table_name="schedule_compliance")
    # data_collections and alerts keep their 0003 shape: 0002 code never wrote to them.
