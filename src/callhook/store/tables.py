"""The schema, as SQLAlchemy Core tables. Alembic migrations in ``migrations/`` create it.

Kept portable: the same tables and queries run on SQLite and PostgreSQL. Nouns:
account → endpoints (each: URL, enabled, retry policy, subscriptions, secrets, state; the
*primary* one is spec 002's webhook setting) → event (one published fact, body serialized once)
→ delivery (that event to one endpoint) → attempt (one HTTP try).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from callhook.core.outcome import DeliveryStatus
from callhook.store.types import StoredId, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", StoredId("acc"), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", StoredId("acc"), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

#: Dashboard sign-in sessions; only the SHA-256 of the cookie value is stored.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

#: Failed sign-in attempts, for throttling (by email and by client address).
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
)

#: API tokens. ``account_id`` NULL is a platform token (the telephony core's). Only the SHA-256
#: of the token is stored; ``prefix`` is the first characters, shown to people to tell them apart.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", StoredId("acc"), ForeignKey("accounts.id"), nullable=True, index=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("prefix", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(400), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
)

#: Where an account's events go: up to ``Settings.max_endpoints_per_account`` per account. The
#: account's *primary* endpoint (``is_primary``, at most one per account) is spec 002's webhook
#: setting; its ``url`` NULL means "not configured" (spec 002's 404). Every other endpoint has a
#: URL. ``all_events`` true: subscribed to every event, present and future (the
#: ``endpoint_subscriptions`` rows are then ignored). ``state``: ``EndpointState``.
endpoints = Table(
    "endpoints",
    metadata,
    Column("id", StoredId("ep"), primary_key=True),
    Column("account_id", StoredId("acc"), ForeignKey("accounts.id"), nullable=False),
    Column("url", Text, nullable=True),
    Column("description", String(500), nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False),
    Column("all_events", Boolean, nullable=False, server_default=false()),
    Column("retry_policy", String(20), nullable=False),
    Column("is_primary", Boolean, nullable=False),
    Column("state", String(16), nullable=False, server_default="active"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Ordered delivery per call (issue 14, ``core.ordering``): ``per_call`` or ``none``; the
    # head-of-line bound; optional maximum ages per event group (NULL: never expires).
    Column("ordering", String(16), nullable=False, server_default="per_call"),
    Column("ordering_bound_seconds", Integer, nullable=False, server_default="300"),
    Column("max_age_call_control_seconds", Integer, nullable=True),
    Column("max_age_bulk_seconds", Integer, nullable=True),
    # Also the index for "this account's endpoints" (its first column).
    UniqueConstraint("account_id", "url", name="uq_endpoints_account_url"),
    Index(
        "ix_endpoints_primary",
        "account_id",
        unique=True,
        sqlite_where=text("is_primary"),
        postgresql_where=text("is_primary"),
    ),
)

#: The events an endpoint is subscribed to (unless ``endpoints.all_events``).
endpoint_subscriptions = Table(
    "endpoint_subscriptions",
    metadata,
    Column("endpoint_id", StoredId("ep"), ForeignKey("endpoints.id"), primary_key=True),
    Column("event", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

#: Signing secrets, encrypted at rest. ``expires_at`` NULL is the current secret; a rotated-out
#: secret keeps signing alongside the new one until ``expires_at``.
endpoint_secrets = Table(
    "endpoint_secrets",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint_id", StoredId("ep"), ForeignKey("endpoints.id"), nullable=False, index=True),
    Column("secret_encrypted", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
)

#: Per-call sequence counters: events of one call are numbered 1, 2, 3… in publish order.
call_sequences = Table(
    "call_sequences",
    metadata,
    Column("account_id", StoredId("acc"), primary_key=True),
    Column("call_id", String(200), primary_key=True),
    Column("last_sequence", Integer, nullable=False),
)

#: Published events. ``body`` is the delivery body, serialized once at publish.
#: ``skip_reason`` says why no delivery was made (integration disabled, no URL, not subscribed).
#: The events ``ix_events_account_pbx`` holds (spelled as queries must repeat it: SQLite uses a
#: partial index only when the query's WHERE contains its condition).
PBX_OWN = "call_id IS NULL OR pbx_id <> call_id"

#: The kinds of status the deliveries list has a partial index for (migration 0008), and the
#: indexes' conditions (``deliveries._status_terms`` spells them the same way).
OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.WAITING)
UNDELIVERED_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED)


def status_in(kind: tuple[DeliveryStatus, ...]) -> str:
    """``status IN ('a', 'b')`` for a partial index's condition."""
    return "status IN (" + ", ".join(f"'{s.value}'" for s in kind) + ")"


OPEN = status_in(OPEN_STATUSES)
UNDELIVERED = status_in(UNDELIVERED_STATUSES)

events = Table(
    "events",
    metadata,
    Column("id", StoredId("evt"), primary_key=True),
    Column("account_id", StoredId("acc"), ForeignKey("accounts.id"), nullable=False),
    Column("event", String(64), nullable=False),
    Column("pbx_id", String(200), nullable=False),
    Column("call_id", String(200), nullable=True),
    Column("sequence", Integer, nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("skip_reason", String(64), nullable=True),
    # Only events with a key are in it (most have none; each entry cost every publish).
    Index(
        "ix_events_idempotency",
        "account_id",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
    Index("ix_events_account_created", "account_id", "created_at"),
    # By ``pbx_id`` only the events whose ``pbx_id`` is not their call's id: for call start,
    # answer and end the two are equal, and ``ix_events_account_call`` finds them (``PBX_OWN``,
    # ``events.for_pbx_id``).
    Index(
        "ix_events_account_pbx",
        "account_id",
        "pbx_id",
        sqlite_where=text(PBX_OWN),
        postgresql_where=text(PBX_OWN),
    ),
    Index("ix_events_account_call", "account_id", "call_id"),
)

#: One event to one endpoint (at most one per event and endpoint). The queue: a worker claims
#: rows whose ``status`` is ``pending`` and ``next_attempt_at`` has come, under a lease
#: (``lease_until``) with a claim token (``claim_id``); completion matches on ``claim_id`` so a
#: stale worker cannot overwrite. Status: (waiting →) pending → delivered | failed | expired.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", StoredId("dlv"), primary_key=True),
    # Looked up through ``uq_deliveries_event_endpoint`` (its first column).
    Column("event_id", StoredId("evt"), ForeignKey("events.id"), nullable=False),
    Column("account_id", StoredId("acc"), ForeignKey("accounts.id"), nullable=False),
    Column("endpoint_id", StoredId("ep"), ForeignKey("endpoints.id"), nullable=False),
    Column("event", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    # Start of the current retry window (24 h); a redelivery starts a new one.
    Column("window_start", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("claim_id", String(40), nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error_class", String(32), nullable=True),
    Column("last_latency_ms", Float, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    # Ordered delivery per call (issue 14, ``store/ordering.py``): the event's call and
    # sequence, copied so the line index needs no join; ``holds_line`` marks the one delivery of
    # a (endpoint, call) line that may be claimed, since ``line_since``; ``previous_sequence``
    # is set on one released past the head-of-line bound (the sequence it went ahead of).
    Column("call_id", String(200), nullable=True),
    Column("sequence", Integer, nullable=True),
    Column("holds_line", Boolean, nullable=False, server_default=false(), default=False),
    Column("line_since", UTCDateTime, nullable=True),
    Column("previous_sequence", Integer, nullable=True),
    # The claim's order (``core.ordering.claim_key``): the due time, plus the aging handicap
    # for bulk events, so call-control events are claimed first without starving bulk ones.
    Column("claim_key", UTCDateTime, nullable=True),
    # The latest attempt, when ``holds_attempt`` (``store/attempts.py``): its number is
    # ``attempts``, its start ``last_attempt_at``, its duration ``last_latency_ms``, its status
    # ``last_status_code``, and these hold the rest (``last_error_class`` is the delivery's
    # outcome, which a disable or an expiry overwrites). Earlier attempts are rows of
    # ``attempts``: the usual one-attempt delivery needs none (issue 16).
    Column("holds_attempt", Boolean, nullable=False, server_default=false()),
    Column("attempt_error_class", String(32), nullable=True),
    Column("attempt_error_message", Text, nullable=True),
    Column("attempt_response_body", Text, nullable=True),
    Column("attempt_request_headers", LargeBinary, nullable=True),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    # A page of the deliveries list walks one of these backwards (``deliveries.list_deliveries``);
    # a status filter walks the account's open or undelivered deliveries alone, not past every
    # delivered one (conditions spelled as ``deliveries._status_terms`` repeats them).
    Index("ix_deliveries_account_created", "account_id", "created_at"),
    # The status column too: equal on two columns, SQLite's planner prefers them to the line
    # above whatever order the indexes were made in, and one status skips the other's rows.
    Index(
        "ix_deliveries_account_open",
        "account_id",
        "status",
        "created_at",
        sqlite_where=text(OPEN),
        postgresql_where=text(OPEN),
    ),
    Index(
        "ix_deliveries_account_undelivered",
        "account_id",
        "status",
        "created_at",
        sqlite_where=text(UNDELIVERED),
        postgresql_where=text(UNDELIVERED),
    ),
    Index("ix_deliveries_endpoint_created", "endpoint_id", "created_at"),
    # The fair claim walks the endpoints that have pending work and takes each one's oldest due
    # rows: both steps are range reads of this index (``callhook.store.queue``).
    Index(
        "ix_deliveries_pending_endpoint",
        "endpoint_id",
        "claim_key",
        "next_attempt_at",
        sqlite_where=text(f"status = '{DeliveryStatus.PENDING.value}'"),
        postgresql_where=text(f"status = '{DeliveryStatus.PENDING.value}'"),
    ),
    UniqueConstraint("event_id", "endpoint_id", name="uq_deliveries_event_endpoint"),
    # Only the rows of open lines (holders and waiting deliveries): tiny, and the predicate is
    # spelled exactly as ``store.ordering.IN_LINE`` repeats it (SQLite matches it literally).
    Index(
        "ix_deliveries_line",
        "endpoint_id",
        "call_id",
        "sequence",
        sqlite_where=text("holds_line OR status = 'waiting'"),
        postgresql_where=text("holds_line OR status = 'waiting'"),
    ),
    # The lines a bulk requeue left for the sweep to settle (``store.ordering.requeue``): empty
    # but for the second after a window redelivery or an outage's replay.
    Index(
        "ix_deliveries_unsettled",
        "endpoint_id",
        "call_id",
        sqlite_where=text("status = 'waiting' AND line_since IS NOT NULL"),
        postgresql_where=text("status = 'waiting' AND line_since IS NOT NULL"),
    ),
)

#: Every HTTP try of a delivery but its latest, which is on the delivery's row
#: (``store/attempts.py``).
attempts = Table(
    "attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("delivery_id", StoredId("dlv"), ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("error_class", String(32), nullable=True),
    Column("error_message", Text, nullable=True),
    # Only what varies (timestamp, signatures, version): ``callhook.core.stored_headers``.
    Column("request_headers", LargeBinary, nullable=True),
)


#: Each endpoint's health and throttle (``callhook.core.health``, ``callhook.core.throttle``): one
#: row per endpoint that ever left the defaults, written at claims and group commits, so every
#: worker process shares one breaker and one token bucket. No row reads as ``active``, no limits.
#: ``endpoints.state`` mirrors ``state`` (written together) for readers of the endpoint.
endpoint_health = Table(
    "endpoint_health",
    metadata,
    Column("endpoint_id", StoredId("ep"), ForeignKey("endpoints.id"), primary_key=True),
    Column("account_id", StoredId("acc"), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("state", String(16), nullable=False, default="active"),
    Column("since", UTCDateTime, nullable=True),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("failing_since", UTCDateTime, nullable=True),
    Column("next_probe_at", UTCDateTime, nullable=True),
    Column("probe_cooldown", Float, nullable=False, default=0.0),
    Column("warned_before", Float, nullable=True),
    # When the machine next has something to do with time alone (a warning, the deadline).
    Column("next_check_at", UTCDateTime, nullable=True),
    # Throttling, set by the customer within the operator's caps (null: none).
    Column("rate_limit", Float, nullable=True),
    Column("max_in_flight", Integer, nullable=True),
    Column("replay_on_recovery", Boolean, nullable=False, default=True),
    Column("tokens", Float, nullable=True),
    Column("tokens_at", UTCDateTime, nullable=True),
    # A 429/503 with Retry-After: nothing is claimed for the endpoint until then.
    Column("slowed_until", UTCDateTime, nullable=True),
)

#: The endpoint event log: every change of state (and every disable warning), with its cause.
endpoint_events = Table(
    "endpoint_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("endpoint_id", StoredId("ep"), nullable=False),
    Column("account_id", StoredId("acc"), ForeignKey("accounts.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("before", String(16), nullable=False),
    Column("after", String(16), nullable=False),
    Column("cause", String(40), nullable=False),
    Column("alert", String(40), nullable=True),
    Column("data", Text, nullable=False, default="{}"),
    Index("ix_endpoint_events_endpoint_at", "endpoint_id", "at"),
)

#: The alert outbox (``callhook.alerts``): one row per alert and channel, written by the state
#: machine in its own transaction and drained by each worker's alert sender. ``id`` derives
#: from ``dedupe_key`` (endpoint + transition), so recording the same transition again adds
#: nothing. Claimed like deliveries: ``claim_id`` and ``lease_until`` fence a sender's update.
#: Status: pending → sent | failed | skipped. ``endpoint_id`` has no foreign key here: the
#: endpoints table comes with its own migration.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("dedupe_key", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("account_id", StoredId("acc"), ForeignKey("accounts.id"), nullable=False),
    Column("endpoint_id", StoredId("ep"), nullable=False),
    Column("data", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("claim_id", String(40), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_alerts_due", "status", "next_attempt_at"),
    Index("ix_alerts_endpoint", "endpoint_id", "created_at"),
)
