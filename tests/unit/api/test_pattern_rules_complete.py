"""Every pattern Callhook checks a value against has its rule in words (``PATTERN_RULES``).

A pattern missing there falls back to a vague generic sentence (never the regex). So every
``pattern`` pydantic enforces — in any model of the package and in every API route's
parameters — is found here from the validators themselves (their core schemas, not the
documentation's JSON Schema, where some patterns only describe what a custom check enforces),
and must have its words; the two timestamp patterns of responses are the only exception, and
no request may use them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

import callhook
from callhook.api.v2.models import (
    TIME_PATTERN,
    TIMESTAMP_PATTERN,
    EndpointCreate,
    EndpointUpdate,
    RedeliverWindow,
)
from callhook.events.models import MODELS, PATTERN_RULES

#: Patterns of what Callhook answers (times it formats itself), never of what it is sent.
RESPONSE_ONLY = {TIME_PATTERN, TIMESTAMP_PATTERN}


def _enforced(core: Any) -> set[str]:
    """The patterns of every string a pydantic core schema checks."""
    found: set[str] = set()
    if isinstance(core, dict):
        if core.get("type") == "str" and isinstance(core.get("pattern"), str):
            found.add(core["pattern"])
        for value in core.values():
            found |= _enforced(value)
    elif isinstance(core, list | tuple):
        for value in core:
            found |= _enforced(value)
    return found


def _modules() -> Iterator[Any]:
    for info in pkgutil.walk_packages(callhook.__path__, "callhook."):
        if ".migrations" not in info.name:  # Alembic's scripts run only under Alembic
            yield importlib.import_module(info.name)


def _params(dependant: Dependant) -> Iterator[Any]:
    yield from dependant.path_params
    yield from dependant.query_params
    yield from dependant.header_params
    yield from dependant.cookie_params
    yield from dependant.body_params
    for sub in dependant.dependencies:
        yield from _params(sub)


@functools.cache  # one walk for both tests
def _everywhere() -> tuple[dict[str, set[str]], set[str]]:
    """(every enforced pattern → where, the patterns route parameters enforce)."""
    where: dict[str, set[str]] = {}
    in_params: set[str] = set()
    routes = 0
    for module in _modules():
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__
                and not obj.__pydantic_generic_metadata__["parameters"]
            ):
                for pattern in _enforced(obj.__pydantic_core_schema__):
                    where.setdefault(pattern, set()).add(f"{module.__name__}.{name}")
            if isinstance(obj, APIRouter):
                for route in obj.routes:
                    if not isinstance(route, APIRoute):
                        continue
                    routes += 1
                    for param in _params(route.dependant):
                        info = param.field_info
                        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]
                        core = adapter.core_schema
                        for pattern in _enforced(core):
                            where.setdefault(pattern, set()).add(f"{route.path} {param.name}")
                            in_params.add(pattern)
    assert routes > 40, "the API's routes were not found"  # the walk itself must work
    return where, in_params


def test_every_enforced_pattern_has_its_rule_in_words() -> None:
    where, _ = _everywhere()
    assert PATTERN_RULES.keys() <= where.keys(), "a rule for a pattern nothing enforces"
    missing = {
        p: sorted(w) for p, w in where.items() if p not in PATTERN_RULES.keys() | RESPONSE_ONLY
    }
    assert not missing, f"patterns without words in events.models.PATTERN_RULES: {missing}"


def test_no_request_uses_a_response_only_pattern() -> None:
    _, in_params = _everywhere()
    requests: list[type[BaseModel]] = [
        *MODELS.values(),
        EndpointCreate,
        EndpointUpdate,
        RedeliverWindow,
    ]
    for model in requests:
        assert not _enforced(model.__pydantic_core_schema__) & RESPONSE_ONLY, model
    assert not in_params & RESPONSE_ONLY
