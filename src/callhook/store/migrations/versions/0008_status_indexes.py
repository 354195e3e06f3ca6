"""status indexes: an account's open and undelivered deliveries, newest first

Revision ID: 0008_status_indexes
Revises: 0007_pbx_index
Create Date: 2026-11-30 07:30:00.000000

Two partial indexes on ``deliveries (account_id, status, created_at)`` serve the deliveries
list (the API, the dashboard) filtered on a status: ``ix_deliveries_account_open`` holds the
pending and waiting ones (the queue), ``ix_deliveries_account_undelivered`` the failed and
expired ones. A page of such a filter walks those alone, where the account's whole index would
be walked past every delivered delivery (an outage a month ago: millions of them; fewer matches
than a page: all of them). With ``status`` in them, SQLite's planner prefers them (two equal
columns) to ``ix_deliveries_account_created`` whatever order the indexes were made in, and a
page of one status skips the other's rows. A delivered event is in neither, so it pays no bytes
for them. No data changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_status_indexes"
down_revision = "0007_pbx_index"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_deliveries_account_open": "status IN ('pending', 'waiting')",
    "ix_deliveries_account_undelivered": "status IN ('failed', 'expired')",
}


def upgrade() -> None:
    for name, where in _INDEXES.items():
        op.create_index(
            name,
            "deliveries",
            ["account_id", "status", "created_at"],
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="deliveries")
