"""Flask adapter. Imports Flask; the receiver core does not.

    @app.post("/webhook")
    @webhook(secret, dedup=Deduplicator(SQLiteStore("dedup.db")))
    def hook(event: Event) -> ResponseReturnValue:
        return accept(process_event, event)   # 200 now, process_event(event) on a thread

A bad signature answers 401 before the view runs and before the body is read when the headers
alone already fail; a duplicate answers 200 without calling the view.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from flask import Response, jsonify, request

from callhook.receiver.background import BackgroundRunner, default_runner
from callhook.receiver.dedup import Deduplicator
from callhook.receiver.event import Event
from callhook.receiver.gate import ACCEPTED, Gate, Rejection
from callhook.receiver.verify import Secrets
from callhook.signing import DEFAULT_TOLERANCE

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")


def webhook(
    secret: Secrets,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    dedup: Deduplicator | None = None,
    clock: Callable[[], float] | None = None,
) -> Callable[[Callable[Concatenate[Event, P], R]], Callable[P, R | Response]]:
    """Decorate a view taking the verified :class:`Event` first (then any URL arguments)."""
    gate = Gate(secret, tolerance=tolerance, dedup=dedup)
    if clock is not None:
        gate.clock = clock

    def decorate(view: Callable[Concatenate[Event, P], R]) -> Callable[P, R | Response]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            try:
                headers = dict(request.headers.items())
                gate.check_headers(headers)
                event = gate.admit(headers, request.get_data(cache=True))
            except Rejection as rejection:
                response = jsonify(rejection.body)
                response.status_code = rejection.status
                return response
            try:
                return view(event, *args, **kwargs)
            except BaseException:
                gate.release(event)
                raise

        return wrapper

    return decorate


def accept(
    fn: Callable[Q, object],
    /,
    *args: Q.args,
    **kwargs: Q.kwargs,
) -> Response:
    """Submit ``fn(*args, **kwargs)`` to the background runner; a 200 ``{"received": true}``."""
    default_runner.submit(fn, *args, **kwargs)
    return jsonify(ACCEPTED)


__all__ = ["BackgroundRunner", "accept", "webhook"]
