"""Circuit breakers per endpoint (keyed by endpoint id), so a dead endpoint cannot hold the
worker's capacity.

Pure: the time is passed in. Only failures that hold a connection slot for long trip it —
``timeout``, ``connect_error``, ``tls_error``; an endpoint that answers, even with a 5xx, is
alive and answers fast. States:

* closed: deliver freely; ``threshold`` consecutive tripping failures open it.
* open until ``now + cooldown``: the worker claims nothing for the endpoint and gives back what
  it holds; the cooldown doubles on each reopening, up to ``max_cooldown``.
* half-open after the cooldown: one probe attempt at a time; success closes the breaker (and
  resets the cooldown), a tripping failure reopens it.

Deliveries wait in the queue meanwhile (their retry window keeps running); nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from callhook.core.outcome import ErrorClass

TRIPPING: Final = frozenset({ErrorClass.TIMEOUT, ErrorClass.CONNECT_ERROR, ErrorClass.TLS_ERROR})


@dataclass
class _State:
    failures: int = 0
    open_until: datetime | None = None
    cooldown: float = 0.0


class Breakers:
    """One breaker per key. Keys with no failures take no memory."""

    def __init__(
        self, *, threshold: int = 5, cooldown: float = 30.0, max_cooldown: float = 300.0
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._states: dict[str, _State] = {}

    def record(self, key: str, *, error_class: str | None, now: datetime) -> bool:
        """Record one attempt's outcome (``error_class`` None for any answer that is not a
        tripping failure); return True when this outcome opened the breaker."""
        state = self._states.get(key)
        if error_class not in TRIPPING:
            if state is not None:
                del self._states[key]
            return False
        if state is None:
            state = self._states[key] = _State()
        state.failures += 1
        half_open = state.open_until is not None and now >= state.open_until
        if half_open or (state.open_until is None and state.failures >= self.threshold):
            state.cooldown = min(
                self.max_cooldown, state.cooldown * 2 if state.cooldown else self.base_cooldown
            )
            state.open_until = now + timedelta(seconds=state.cooldown)
            return True
        return False

    def blocked(self, now: datetime) -> set[str]:
        """Keys whose breaker is open: claim nothing for them."""
        return {
            k for k, s in self._states.items() if s.open_until is not None and now < s.open_until
        }

    def probing(self, now: datetime) -> set[str]:
        """Keys whose cooldown is over: allow one attempt at a time."""
        return {
            k for k, s in self._states.items() if s.open_until is not None and now >= s.open_until
        }
