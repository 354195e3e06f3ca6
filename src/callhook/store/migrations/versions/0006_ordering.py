"""ordering: per-call lines in the queue (issue 14)

Revision ID: 0006_ordering
Revises: 0005_endpoint_health
Create Date: 2026-11-29 17:00:00.000000

Endpoints gain ``ordering`` (``per_call``, the default, or ``none``), ``ordering_bound_seconds``
(300) and optional maximum ages per event group. Deliveries gain their event's ``call_id`` and
``sequence`` (copied from ``events`` for existing rows), ``holds_line``/``line_since`` (the one
claimable delivery of an (endpoint, call) line) and ``previous_sequence`` (set when sent out of
order past the head-of-line bound), and the partial index ``ix_deliveries_line`` over the rows of
open lines; ``claim_key`` (the claim's order, call-control first), which the fair claim's
per-endpoint index now orders by. Existing pending deliveries keep ``holds_line`` false: they
were queued unordered and are delivered as before; new ones line up.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_ordering"
down_revision = "0005_endpoint_health"
branch_labels = None
depends_on = None

_LINE_WHERE = "holds_line OR status = 'waiting'"


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(
            sa.Column("ordering", sa.String(16), nullable=False, server_default="per_call")
        )
        batch.add_column(
            sa.Column("ordering_bound_seconds", sa.Integer(), nullable=False, server_default="300")
        )
        batch.add_column(sa.Column("max_age_call_control_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_age_bulk_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("call_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("holds_line", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("line_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("previous_sequence", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claim_key", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE deliveries SET call_id = (SELECT e.call_id FROM events e "
        "WHERE e.id = deliveries.event_id), sequence = (SELECT e.sequence FROM events e "
        "WHERE e.id = deliveries.event_id)"
    )
    op.execute("UPDATE deliveries SET claim_key = next_attempt_at WHERE status = 'pending'")
    # The fair claim's per-endpoint index now orders by the claim key (issue 14's priority).
    op.drop_index("ix_deliveries_pending_endpoint", table_name="deliveries")
    op.create_index(
        "ix_deliveries_pending_endpoint",
        "deliveries",
        ["endpoint_id", "claim_key", "next_attempt_at"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_line",
        "deliveries",
        ["endpoint_id", "call_id", "sequence"],
        sqlite_where=sa.text(_LINE_WHERE),
        postgresql_where=sa.text(_LINE_WHERE),
    )


def downgrade() -> None:
    # Before 0005 nothing claims a 'waiting' row nor knows 'expired': waiting deliveries become
    # pending (sent unordered, as then), expired ones failed (their error class says why).
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'waiting'")
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'expired'")
    op.drop_index("ix_deliveries_line", table_name="deliveries")
    op.drop_index("ix_deliveries_pending_endpoint", table_name="deliveries")
    op.create_index(
        "ix_deliveries_pending_endpoint",
        "deliveries",
        ["endpoint_id", "next_attempt_at"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    with op.batch_alter_table("deliveries") as batch:
        for name in (
            "claim_key",
            "previous_sequence",
            "line_since",
            "holds_line",
            "sequence",
            "call_id",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("endpoints") as batch:
        for name in (
            "max_age_bulk_seconds",
            "max_age_call_control_seconds",
            "ordering_bound_seconds",
            "ordering",
        ):
            batch.drop_column(name)
