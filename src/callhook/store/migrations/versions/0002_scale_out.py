"""scale-out: retention indexes; PostgreSQL NOTIFY on new deliveries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000

Two partial indexes let retention find what it may prune without scanning the tables (both
dialects support partial indexes): delivered deliveries by ``delivered_at``, and events that never
had a delivery (``skip_reason`` set) by id, which sorts by creation time.

On PostgreSQL a statement-level trigger on ``deliveries`` sends ``NOTIFY callhook_deliveries``
(payload: the schema) after every INSERT. PostgreSQL delivers it only when the inserting
transaction commits, and folds all notifications of one transaction into one, so every publisher
(API, CLI, simulator, anything that inserts deliveries) wakes idle workers in every process with
no code on the publishing side. See ``callhook.store.notify``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE OR REPLACE FUNCTION callhook_notify_deliveries() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('callhook_deliveries', current_schema());
    RETURN NULL;
END
$$
"""

_TRIGGER = """
CREATE TRIGGER deliveries_notify
AFTER INSERT ON deliveries
FOR EACH STATEMENT EXECUTE FUNCTION callhook_notify_deliveries()
"""


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_delivered_at",
        "deliveries",
        ["delivered_at"],
        postgresql_where=sa.text("status = 'delivered'"),
        sqlite_where=sa.text("status = 'delivered'"),
    )
    op.create_index(
        "ix_events_skipped",
        "events",
        ["id"],
        postgresql_where=sa.text("skip_reason IS NOT NULL"),
        sqlite_where=sa.text("skip_reason IS NOT NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS deliveries_notify ON deliveries")
        op.execute("DROP FUNCTION IF EXISTS callhook_notify_deliveries()")
    op.drop_index("ix_events_skipped", table_name="events")
    op.drop_index("ix_deliveries_delivered_at", table_name="deliveries")
