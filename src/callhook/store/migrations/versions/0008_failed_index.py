"""failed index: an account's failed deliveries, newest first

Revision ID: 0008_failed_index
Revises: 0007_pbx_index
Create Date: 2026-11-30 07:00:00.000000

``ix_deliveries_account_failed`` (``account_id, created_at``, partial: ``status = 'failed'``)
serves the deliveries list filtered on ``failed`` (the API, the dashboard): a page is a walk of
the account's failed deliveries alone, where the account's whole index would be walked past
every delivered one newer than them (an outage a month ago: millions). It holds only failed
rows, so a delivered event pays nothing for it. No data changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_failed_index"
down_revision = "0007_pbx_index"
branch_labels = None
depends_on = None

_FAILED = "status = 'failed'"


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_account_failed",
        "deliveries",
        ["account_id", "created_at"],
        sqlite_where=sa.text(_FAILED),
        postgresql_where=sa.text(_FAILED),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_account_failed", table_name="deliveries")
