"""What the router would accept at a path: the ``Allow`` header of a 405 (RFC 9110 §15.5.6).

Starlette answers 405 with the methods of the *first* route whose path matched, so a path served
by two routes (``POST`` and ``DELETE /api/v2/webhooks/{event}``) advertised only one of them.
Here every route whose path matches counts; a route with a fixed path (``/webhooks/test``)
shadows the parametrized ones that would also match it (``/webhooks/{event}``), as the API's
reserved-name guards do (``api.v2.common.reserved``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, compile_path
from starlette.types import Scope


@functools.lru_cache(maxsize=1024)
def _compiled(path: str) -> tuple[re.Pattern[str], bool]:
    regex, _format, convertors = compile_path(path)
    return regex, bool(convertors)


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods allowed at ``scope``'s path, sorted; empty when no route has that path."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    fixed: set[str] = set()
    parametrized: set[str] = set()
    for route in iter_route_contexts(routes):
        methods, pattern = route.methods, route.path
        if not methods or pattern is None:
            continue
        regex, has_parameters = _compiled(pattern)
        if regex.match(path):
            (parametrized if has_parameters else fixed).update(methods)
    return sorted(fixed or parametrized)
