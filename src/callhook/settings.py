"""Settings: one frozen object built from flags and ``CALLHOOK_*`` variables, passed in.

Nothing here is read at import time; ``Settings.from_env()`` is called by the entry points
(CLI, tests) and the result is handed to ``create_app`` and the worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from callhook.core.health import HealthPolicy
from callhook.core.replay import ReplayPolicy
from callhook.core.throttle import Caps

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"CALLHOOK_{name.upper()} must be true or false, not {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable. Each field maps to ``CALLHOOK_<FIELD>`` in the environment."""

    database_url: str = "sqlite:///./callhook.db"
    # Seconds allowed for one whole attempt: connect, TLS, request and response (spec 000: 2 s).
    delivery_timeout: float = 2.0
    ca_bundle: Path | None = None
    # Development only: allow http:// URLs and private/loopback targets (the demo receiver).
    allow_unsafe_targets: bool = False
    # Key that encrypts webhook signing secrets at rest (urlsafe base64 of 32 bytes). When unset,
    # a key file beside the SQLite database is created and used (see ``callhook.store.keys``).
    master_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    max_body_bytes: int = 256 * 1024
    max_batch_events: int = 1000
    # The HTTP edge (``callhook.api.edge``): what one client may send, and how slowly.
    max_url_bytes: int = 8 * 1024
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    # How many webhook endpoints one account may have (the primary one included).
    max_endpoints_per_account: int = 20
    # Worker tuning.
    worker_batch_size: int = 256
    worker_max_in_flight: int = 128
    worker_per_endpoint_limit: int = 32
    # At most this many of one endpoint's deliveries per claim: claims take every endpoint's
    # oldest due delivery first, then every one's second, … (``callhook.store.queue.claim``).
    worker_claim_per_endpoint: int = 32
    lease_seconds: float = 30.0
    poll_interval: float = 0.25
    response_body_limit: int = 4096
    # Endpoints with their own series in ``callhook_endpoint_attempts_total`` (per process; the
    # rest are counted as endpoint="other"): bounds the metric's cardinality.
    metrics_max_endpoint_series: int = 50
    # Retention: delivered deliveries (with their attempts, and events nothing else references)
    # older than this many days are pruned; 0 keeps everything. Workers prune every
    # ``prune_interval_minutes`` (0: only ``callhook prune``), ``prune_batch_size`` rows at a time.
    retention_days: float = 30.0
    prune_interval_minutes: float = 10.0
    prune_batch_size: int = 500
    # Ordered delivery per call (issue 14): how often a worker sweeps the open lines (the
    # head-of-line bound, maximum ages, and the calls a window redelivery or an outage's replay
    # queued again). 0 turns the sweep off — for tests only: those then wait for ever.
    ordering_sweep_seconds: float = 1.0
    # Rate limits (requests per second, with a burst of ``rate_limit_burst``).
    rate_limit_per_token: float = 50.0
    rate_limit_burst: int = 100
    # Endpoint health (``callhook.core.health``): consecutive failures that make an endpoint
    # ``failing``; probe cooldowns (seconds); hours failing before it is disabled (0: never);
    # warnings before that (hours, comma-separated); replay on recovery bounds; how often
    # workers check deadlines (seconds).
    endpoint_failure_threshold: int = 5
    endpoint_probe_cooldown: float = 30.0
    endpoint_max_probe_cooldown: float = 300.0
    endpoint_disable_after_hours: float = 120.0
    endpoint_disable_warnings_hours: str = "24,1"
    replay_max_age_hours: float = 72.0
    replay_max_count: int = 10_000
    health_check_interval: float = 60.0
    # Operator caps on the throttling customers set per endpoint (deliveries/s, in flight).
    endpoint_rate_limit_cap: float = 1000.0
    endpoint_max_in_flight_cap: int = 64
    # Alerts (``callhook.alerts``): operational webhooks to the operator's URL, signed with
    # their own secret, and mail to each account's dashboard users. Checked at start
    # (``callhook.alerts.config``): a URL the vetting refuses or a malformed SMTP setting stops
    # the process with a message naming the variable.
    operational_webhook_url: str | None = None
    operational_webhook_secret: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    # STARTTLS on a plain connection (port 587), or TLS from the first byte (port 465).
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_timeout: float = 10.0
    # How often the alert sender looks for alerts due, and how long it keeps retrying one.
    alert_poll_interval: float = 2.0
    alert_retry_hours: float = 24.0
    log_level: str = "INFO"
    log_json: bool = True
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``CALLHOOK_*`` variables; keyword overrides win (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"CALLHOOK_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        built = cls(**values)
        health_rules(built)  # a malformed health setting stops start-up, here
        return built

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _convert(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "bool":
            return _parse_bool(name, raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("Path"):
            return Path(raw) if raw else None
    except ValueError as exc:
        raise ValueError(f"CALLHOOK_{name.upper()}: {exc}") from exc
    if kind.endswith("| None") and raw == "":
        return None
    return raw


def health_rules(settings: Settings) -> tuple[HealthPolicy, ReplayPolicy, Caps]:
    """The endpoint health machine's policy, the replay bounds and the throttling caps.

    Raises ``ValueError`` naming the ``CALLHOOK_*`` variable when one is out of range."""
    from datetime import timedelta

    try:
        warnings = tuple(
            timedelta(hours=float(part))
            for part in settings.endpoint_disable_warnings_hours.split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise ValueError(
            "CALLHOOK_ENDPOINT_DISABLE_WARNINGS_HOURS must be hours separated by commas, "
            f"not {settings.endpoint_disable_warnings_hours!r}"
        ) from exc
    after = settings.endpoint_disable_after_hours
    try:
        policy = HealthPolicy(
            failure_threshold=settings.endpoint_failure_threshold,
            probe_cooldown=timedelta(seconds=settings.endpoint_probe_cooldown),
            max_probe_cooldown=timedelta(seconds=settings.endpoint_max_probe_cooldown),
            disable_after=timedelta(hours=after) if after > 0 else None,
            warnings=warnings,
        )
        replay = ReplayPolicy(
            max_age=timedelta(hours=settings.replay_max_age_hours),
            max_count=settings.replay_max_count,
        )
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"CALLHOOK_ENDPOINT_*/CALLHOOK_REPLAY_* settings: {exc}") from exc
    if not settings.endpoint_rate_limit_cap > 0 or settings.endpoint_max_in_flight_cap < 1:
        raise ValueError(
            "CALLHOOK_ENDPOINT_RATE_LIMIT_CAP must be above 0 and "
            "CALLHOOK_ENDPOINT_MAX_IN_FLIGHT_CAP at least 1"
        )
    caps = Caps(
        max_rate_limit=settings.endpoint_rate_limit_cap,
        max_in_flight=settings.endpoint_max_in_flight_cap,
    )
    return policy, replay, caps
