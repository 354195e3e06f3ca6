"""Django adapter. Imports Django; the receiver core does not.

    @webhook_view(settings.CALLHOOK_WEBHOOK_SECRET, dedup=Deduplicator(SQLiteStore("d.db")))
    def hook(request: HttpRequest, event: Event) -> HttpResponse:
        return accept(process_event, event)   # 200 now, process_event(event) on a thread

The decorated view is CSRF-exempt (the signature authenticates it), accepts POST only, answers
401 on a bad signature before the view runs, and 200 to a duplicate without calling it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from callhook.receiver.background import default_runner
from callhook.receiver.dedup import Deduplicator
from callhook.receiver.event import Event
from callhook.receiver.gate import ACCEPTED, Gate, Rejection
from callhook.receiver.verify import Secrets
from callhook.signing import DEFAULT_TOLERANCE

P = ParamSpec("P")
Q = ParamSpec("Q")

View = Callable[Concatenate[HttpRequest, P], HttpResponse]


def webhook_view(
    secret: Secrets,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    dedup: Deduplicator | None = None,
    clock: Callable[[], float] | None = None,
) -> Callable[[Callable[Concatenate[HttpRequest, Event, P], HttpResponse]], View[P]]:
    """Decorate a view ``(request, event, *url_args)``."""
    gate = Gate(secret, tolerance=tolerance, dedup=dedup)
    if clock is not None:
        gate.clock = clock

    def decorate(
        view: Callable[Concatenate[HttpRequest, Event, P], HttpResponse],
    ) -> View[P]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            try:
                gate.check_headers(request.headers)
                event = gate.admit(request.headers, request.body)
            except Rejection as rejection:
                return JsonResponse(rejection.body, status=rejection.status)
            try:
                return view(request, event, *args, **kwargs)
            except BaseException:
                gate.release(event)
                raise

        exempt: View[P] = csrf_exempt(wrapper)
        return exempt

    return decorate


def accept(fn: Callable[Q, object], /, *args: Q.args, **kwargs: Q.kwargs) -> HttpResponse:
    """Submit ``fn(*args, **kwargs)`` to the background runner; a 200 ``{"received": true}``."""
    default_runner.submit(fn, *args, **kwargs)
    return JsonResponse(ACCEPTED)
