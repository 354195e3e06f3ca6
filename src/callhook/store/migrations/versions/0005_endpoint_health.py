"""endpoint health: states, the endpoint event log, throttling

Revision ID: 0005_endpoint_health
Revises: 0004_compact
Create Date: 2026-11-25 09:00:00.000000

``endpoint_health`` holds each endpoint's state machine (``callhook.core.health``) and token
bucket (``callhook.core.throttle``) in the database, shared by every worker process;
``endpoint_events`` is the log of its transitions. No row means ``active`` with no limits, so
existing endpoints need no data.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_endpoint_health"
down_revision = "0004_compact"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoint_health",
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_probe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_cooldown", sa.Float, nullable=False),
        sa.Column("warned_before", sa.Float, nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_limit", sa.Float, nullable=True),
        sa.Column("max_in_flight", sa.Integer, nullable=True),
        sa.Column("replay_on_recovery", sa.Boolean, nullable=False),
        sa.Column("tokens", sa.Float, nullable=True),
        sa.Column("tokens_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slowed_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("endpoint_id", name="pk_endpoint_health"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_endpoint_health_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["endpoints.id"], name="fk_endpoint_health_endpoint_id_endpoints"
        ),
    )
    op.create_index("ix_endpoint_health_account_id", "endpoint_health", ["account_id"])
    op.create_table(
        "endpoint_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.String(16), nullable=False),
        sa.Column("after", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("alert", sa.String(40), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_endpoint_events"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_endpoint_events_account_id_accounts"
        ),
    )
    op.create_index("ix_endpoint_events_endpoint_at", "endpoint_events", ["endpoint_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_endpoint_events_endpoint_at", table_name="endpoint_events")
    op.drop_table("endpoint_events")
    op.drop_index("ix_endpoint_health_account_id", table_name="endpoint_health")
    op.drop_table("endpoint_health")
