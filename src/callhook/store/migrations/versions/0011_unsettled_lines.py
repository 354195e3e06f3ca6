"""unsettled lines: the waiting deliveries a bulk requeue left for the line sweep

Revision ID: 0011_unsettled_lines
Revises: 0010_latest_attempt
Create Date: 2026-11-30 20:40:00.000000

Issue 14 (``store/ordering.requeue``): a window redelivery or an outage's replay puts a call's
deliveries back as ``waiting`` with ``line_since`` set, and each worker's line sweep (every
second) gives such a line to its lowest sequence. ``ix_deliveries_unsettled`` holds only those
rows, so the sweep's check costs an empty index read when there are none — without it, every
worker read every waiting row each second (49–121 ms at 100,000 waiting on SQLite; a sequential
scan on PostgreSQL). No data changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_unsettled_lines"
down_revision = "0010_latest_attempt"
branch_labels = None
depends_on = None

_WHERE = "status = 'waiting' AND line_since IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_unsettled",
        "deliveries",
        ["endpoint_id", "call_id"],
        sqlite_where=sa.text(_WHERE),
        postgresql_where=sa.text(_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_unsettled", table_name="deliveries")
