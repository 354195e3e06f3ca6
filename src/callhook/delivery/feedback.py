"""What a group commit changed in the endpoints' health, acted on in the worker.

After each commit of results (``Recorder``), ``Claims.take_changes`` hands over the transitions
the results caused (``callhook.core.health``) and the endpoints slowed down by a Retry-After.
``HealthFeedback`` counts the transitions (``callhook_endpoint_transitions_total``), logs them,
and gives back at once the queued jobs of every endpoint that may take no more (paused,
failing, disabled, slowed down), so they are not attempted against the endpoint's new state.
"""

from __future__ import annotations

import logging

from callhook.core.health import EndpointState, Transition
from callhook.delivery.claims import Claims
from callhook.delivery.lanes import Lanes
from callhook.metrics import Metrics

log = logging.getLogger("callhook.delivery")

#: States in which an endpoint takes nothing more (a failing one only its probes).
HELD_STATES = frozenset({EndpointState.FAILING, EndpointState.PAUSED, EndpointState.DISABLED})


class HealthFeedback:
    """Acts on one worker's commits: ``after_commit`` is the ``Recorder``'s hook."""

    def __init__(self, claims: Claims, lanes: Lanes, metrics: Metrics | None) -> None:
        self._claims = claims
        self._lanes = lanes
        self._metrics = metrics

    async def after_commit(self) -> None:
        """Count and log the transitions of the last commits; hold back the endpoints that may
        take no more (their queued jobs go back to the queue at once)."""
        transitions, slowed = self._claims.take_changes()
        stopped: dict[str, str] = {}
        for endpoint_id, t in transitions:
            if self._metrics is not None:
                self._metrics.endpoint_transition(t.before.value, t.after.value, t.cause.value)
            if t.after in HELD_STATES and t.after is not t.before:
                stopped[endpoint_id] = t.after.value
                log.warning("endpoint %s", t.after.value, extra=_log_fields(endpoint_id, t))
            elif t.after is not t.before or t.alert is not None:
                log.info("endpoint %s", t.cause.value, extra=_log_fields(endpoint_id, t))
        for endpoint_id in slowed:
            stopped.setdefault(endpoint_id, "Retry-After")
        for endpoint_id, why in stopped.items():
            await self._lanes.hold_back(endpoint_id, why)


def _log_fields(endpoint_id: str, t: Transition) -> dict[str, object]:
    return {
        "endpoint_id": endpoint_id,
        "before": t.before.value,
        "after": t.after.value,
        "cause": t.cause.value,
        "alert": t.alert.value if t.alert else None,
    }
