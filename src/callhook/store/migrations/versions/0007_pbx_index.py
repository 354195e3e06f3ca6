"""pbx index: only the events whose pbx_id is not their call's id

Revision ID: 0007_pbx_index
Revises: 0006_ordering
Create Date: 2026-11-30 04:40:00.000000

``ix_events_account_pbx`` becomes partial: call start, answer and end have ``pbx_id`` equal to
their ``call_id``, and ``ix_events_account_call`` already finds them, so ``events.for_pbx_id``
looks up the call index and this one, each once (issue 16: 29 % of the simulator's events leave
the index, ~23 bytes each). Downgrade rebuilds the full index. No data changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_pbx_index"
down_revision = "0006_ordering"
branch_labels = None
depends_on = None

_PBX_OWN = "call_id IS NULL OR pbx_id <> call_id"


def upgrade() -> None:
    op.drop_index("ix_events_account_pbx", table_name="events")
    op.create_index(
        "ix_events_account_pbx",
        "events",
        ["account_id", "pbx_id"],
        sqlite_where=sa.text(_PBX_OWN),
        postgresql_where=sa.text(_PBX_OWN),
    )


def downgrade() -> None:
    op.drop_index("ix_events_account_pbx", table_name="events")
    op.create_index("ix_events_account_pbx", "events", ["account_id", "pbx_id"])
