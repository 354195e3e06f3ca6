"""latest attempt on its delivery row: ``attempts`` keeps only the earlier ones

Revision ID: 0010_latest_attempt
Revises: 0009_binary_ids
Create Date: 2026-11-30 15:00:00.000000

Issue 16, "store less per delivery" (docs/decisions.md, "The latest attempt on its delivery
row", ``store/attempts.py``): ``deliveries`` gains ``holds_attempt`` and the four fields of
an attempt it did not already hold (error class, error message, response excerpt, request
headers); its ``attempts``, ``last_attempt_at``, ``last_latency_ms`` and ``last_status_code``
are the others. Each delivery's latest attempt moves onto its row and out of ``attempts`` when
the row agrees with it on those four (it does whenever Callhook wrote both; one that does not
stays where it is, and reads as before). Both backends. Downgrade moves every row's attempt
back into ``attempts``. 0.6 s for 20,000 delivered events on the 2-core development machine,
~30 s per million.
"""

# The SQL here is built from the constants below only (no input): S608.
# ruff: noqa: S608
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_latest_attempt"
down_revision = "0009_binary_ids"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("holds_attempt", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("attempt_error_class", sa.String(32), nullable=True),
        sa.Column("attempt_error_message", sa.Text(), nullable=True),
        sa.Column("attempt_response_body", sa.Text(), nullable=True),
        sa.Column("attempt_request_headers", sa.LargeBinary(), nullable=True),
    ]


# Each delivery's latest attempt (the last one recorded: ids grow), when the row agrees with it.
_LATEST = "(SELECT MAX(m.id) FROM attempts m WHERE m.delivery_id = deliveries.id)"
_AGREES = (
    f"EXISTS (SELECT 1 FROM attempts a WHERE a.id = {_LATEST}"
    " AND a.number = deliveries.attempts AND a.started_at = deliveries.last_attempt_at"
    " AND a.duration_ms = deliveries.last_latency_ms"
    " AND (a.status_code = deliveries.last_status_code"
    " OR (a.status_code IS NULL AND deliveries.last_status_code IS NULL)))"
)


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        for column in _columns():
            batch.add_column(column)
    op.execute(
        "UPDATE deliveries SET (holds_attempt, attempt_error_class, attempt_error_message,"
        " attempt_response_body, attempt_request_headers) = (SELECT TRUE, a.error_class,"
        " a.error_message, a.response_body, a.request_headers FROM attempts a"
        f" WHERE a.id = {_LATEST}) WHERE {_AGREES}"
    )
    op.execute(
        "DELETE FROM attempts WHERE id IN (SELECT MAX(id) FROM attempts GROUP BY delivery_id)"
        " AND delivery_id IN (SELECT id FROM deliveries WHERE holds_attempt)"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code,"
        " response_body, error_class, error_message, request_headers)"
        " SELECT id, attempts, last_attempt_at, last_latency_ms, last_status_code,"
        " attempt_response_body, attempt_error_class, attempt_error_message,"
        " attempt_request_headers FROM deliveries WHERE holds_attempt"
    )
    with op.batch_alter_table("deliveries") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
