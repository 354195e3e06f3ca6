"""endpoints: several webhook endpoints per account; deliveries go to an endpoint

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:00:00.000000

Each account's integration (its one webhook setting) becomes its *primary* endpoint: same URL,
enabled flag, retry policy, subscriptions and signing secrets (the encrypted values are copied
as they are), and every delivery of the account is attached to it (``deliveries.endpoint_id``).
The primary endpoint's id is derived from the account's (``acc_X`` → ``ep_X``), so the
migration is plain SQL on both dialects and needs no randomness. An account with deliveries but
no integration (not something the code ever made) still gets a primary endpoint, without URL,
so no delivery is left without one.

SQLite cannot add a NOT NULL foreign key column in place: the ``deliveries`` table is rebuilt
(Alembic's batch mode, with foreign key checks off: ``callhook.store.migrate``), and its
partial index from 0002 is made again afterwards because the
rebuild does not carry partial indexes' conditions over.

Downgrade keeps the primary endpoints as integrations and drops every other endpoint with its
deliveries and attempts (the old schema cannot hold them).
"""

# The SQL here is built from constants only (no input), so S608 does not apply.
# ruff: noqa: S608
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The primary endpoint id of the account in column ``col`` (SQL, both dialects).
_EP = "'ep_' || substr({col}, 5)"
_PENDING = sa.text("status = 'pending'")
_DELIVERED = sa.text("status = 'delivered'")


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("all_events", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("retry_policy", sa.String(length=20), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_endpoints_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("account_id", "url", name="uq_endpoints_account_url"),
    )
    op.create_index(
        "ix_endpoints_primary",
        "endpoints",
        ["account_id"],
        unique=True,
        sqlite_where=sa.text("is_primary"),
        postgresql_where=sa.text("is_primary"),
    )
    op.create_table(
        "endpoint_subscriptions",
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_endpoint_subscriptions_endpoint_id_endpoints"),
        ),
        sa.PrimaryKeyConstraint("endpoint_id", "event", name=op.f("pk_endpoint_subscriptions")),
    )
    op.create_table(
        "endpoint_secrets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_endpoint_secrets_endpoint_id_endpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint_secrets")),
    )
    op.create_index("ix_endpoint_secrets_endpoint_id", "endpoint_secrets", ["endpoint_id"])

    # --- the data: integrations → primary endpoints -------------------------------------------
    op.execute(
        "INSERT INTO endpoints (id, account_id, url, description, enabled, all_events,"
        " retry_policy, is_primary, state, created_at, updated_at)"
        f" SELECT {_EP.format(col='account_id')}, account_id, url, '', enabled, false,"
        " retry_policy, true, 'active', created_at, updated_at FROM integrations"
    )
    op.execute(
        "INSERT INTO endpoints (id, account_id, url, description, enabled, all_events,"
        " retry_policy, is_primary, state, created_at, updated_at)"
        f" SELECT {_EP.format(col='account_id')}, account_id, NULL, '', true, false,"
        " 'exponential', true, 'active', MIN(created_at), MIN(created_at) FROM deliveries"
        " WHERE account_id NOT IN (SELECT account_id FROM integrations) GROUP BY account_id"
    )
    op.execute(
        "INSERT INTO endpoint_subscriptions (endpoint_id, event, created_at)"
        f" SELECT {_EP.format(col='account_id')}, event, created_at FROM subscriptions"
        " WHERE account_id IN (SELECT account_id FROM integrations)"
    )
    op.execute(
        "INSERT INTO endpoint_secrets (id, endpoint_id, secret_encrypted, created_at, expires_at)"
        f" SELECT id, {_EP.format(col='account_id')}, secret_encrypted, created_at, expires_at"
        " FROM integration_secrets WHERE account_id IN (SELECT account_id FROM integrations)"
    )

    # --- deliveries.endpoint_id ------------------------------------------------------------
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("deliveries", sa.Column("endpoint_id", sa.String(length=40), nullable=True))
    op.execute(f"UPDATE deliveries SET endpoint_id = {_EP.format(col='account_id')}")
    if sqlite:
        op.drop_index("ix_deliveries_delivered_at", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("endpoint_id", existing_type=sa.String(length=40), nullable=False)
        batch.create_foreign_key(
            op.f("fk_deliveries_endpoint_id_endpoints"), "endpoints", ["endpoint_id"], ["id"]
        )
        batch.create_unique_constraint("uq_deliveries_event_endpoint", ["event_id", "endpoint_id"])
    if sqlite:
        op.create_index(
            "ix_deliveries_delivered_at",
            "deliveries",
            ["delivered_at"],
            sqlite_where=_DELIVERED,
        )
    op.create_index("ix_deliveries_endpoint_created", "deliveries", ["endpoint_id", "created_at"])
    op.create_index(
        "ix_deliveries_pending_endpoint",
        "deliveries",
        ["endpoint_id", "next_attempt_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )

    op.drop_table("subscriptions")
    op.drop_index("ix_integration_secrets_account_id", table_name="integration_secrets")
    op.drop_table("integration_secrets")
    op.drop_table("integrations")


def downgrade() -> None:
    from callhook.events.names import SUBSCRIBABLE_EVENTS

    op.create_table(
        "integrations",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("retry_policy", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_integrations_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_integrations")),
    )
    op.create_table(
        "subscriptions",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_subscriptions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "event", name=op.f("pk_subscriptions")),
    )
    op.create_table(
        "integration_secrets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_integration_secrets_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_secrets")),
    )
    op.create_index("ix_integration_secrets_account_id", "integration_secrets", ["account_id"])
    op.execute(
        "INSERT INTO integrations (account_id, url, enabled, retry_policy, created_at,"
        " updated_at) SELECT account_id, url, enabled, retry_policy, created_at, updated_at"
        " FROM endpoints WHERE is_primary"
    )
    op.execute(
        "INSERT INTO subscriptions (account_id, event, created_at)"
        " SELECT e.account_id, s.event, s.created_at FROM endpoint_subscriptions s"
        " JOIN endpoints e ON e.id = s.endpoint_id WHERE e.is_primary AND NOT e.all_events"
    )
    for event in SUBSCRIBABLE_EVENTS:
        op.get_bind().execute(
            sa.text(
                "INSERT INTO subscriptions (account_id, event, created_at)"
                " SELECT account_id, :event, updated_at FROM endpoints"
                " WHERE is_primary AND all_events"
            ),
            {"event": event},
        )
    op.execute(
        "INSERT INTO integration_secrets (id, account_id, secret_encrypted, created_at,"
        " expires_at) SELECT s.id, e.account_id, s.secret_encrypted, s.created_at, s.expires_at"
        " FROM endpoint_secrets s JOIN endpoints e ON e.id = s.endpoint_id WHERE e.is_primary"
    )
    secondary = "SELECT id FROM endpoints WHERE NOT is_primary"
    op.execute(
        "DELETE FROM attempts WHERE delivery_id IN"
        f" (SELECT id FROM deliveries WHERE endpoint_id IN ({secondary}))"
    )
    op.execute(f"DELETE FROM deliveries WHERE endpoint_id IN ({secondary})")
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_deliveries_pending_endpoint", table_name="deliveries")
    op.drop_index("ix_deliveries_endpoint_created", table_name="deliveries")
    if sqlite:
        op.drop_index("ix_deliveries_delivered_at", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_event_endpoint", type_="unique")
        batch.drop_constraint(op.f("fk_deliveries_endpoint_id_endpoints"), type_="foreignkey")
        batch.drop_column("endpoint_id")
    if sqlite:
        op.create_index(
            "ix_deliveries_delivered_at", "deliveries", ["delivered_at"], sqlite_where=_DELIVERED
        )
    op.drop_index("ix_endpoint_secrets_endpoint_id", table_name="endpoint_secrets")
    op.drop_table("endpoint_secrets")
    op.drop_table("endpoint_subscriptions")
    op.drop_index("ix_endpoints_primary", table_name="endpoints")
    op.drop_table("endpoints")
