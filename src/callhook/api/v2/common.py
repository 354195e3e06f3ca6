"""What every API v2 route shares: access checks, request hygiene, database calls, responses.

Order of checks for each request (each failure in the spec 002 error envelope):

1. headers over ``MAX_HEADER_BYTES`` → 431; a declared body over the route's limit → 413;
2. a presented credential that already failed repeatedly from this client address → 429,
   without looking it up (``callhook.api.auth.authenticate_token``);
3. the bearer token: missing, malformed, unknown, expired or revoked → 401 (and, when
   credentials were presented, one failure counted against the client address; 429 instead
   while that address has failed too often lately — a valid token is still served);
4. the token's request allowance → 429 with ``Retry-After``;
5. scope → 403 naming the missing scope; a platform token (bound to no account) → 403;
6. a body on a route that takes none → 400;
7. a query parameter the route does not take, or one given more than once → 422 naming it
   (a misspelt filter must not quietly list everything; which of two values counts is no
   guess to leave to the framework).

The handler then works on the token's account only: no route takes an account id, so one
account's token can never name another account's data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from callhook.api import body
from callhook.api.auth import authenticate_token, limits_of, require_scope
from callhook.api.v2.models import ErrorResponse
from callhook.errors import InvalidRequest, PayloadInvalid, PayloadTooLarge, PermissionDenied
from callhook.events.models import pattern_rule
from callhook.platform import Platform
from callhook.store.db import Connection
from callhook.store.tokens import Token

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

READ = "webhooks.read"
WRITE = "webhooks.write"
#: Add, change and delete endpoints, read and rotate their secrets; granted only when asked for.
ENDPOINTS_WRITE = "endpoints.write"
#: Total size of the request's header names and values we accept on API v2.
MAX_HEADER_BYTES = 8 * 1024
#: Largest JSON body an API v2 route accepts.
MAX_JSON_BODY_BYTES = 16 * 1024

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="An API token (`chk_…`) created for your account, with the scopes the route "
    "names: `webhooks.read` for GET, `webhooks.write` for POST and DELETE under /webhooks, "
    "`endpoints.write` to add, change or delete endpoints and to read or rotate their secrets.",
)

_ERRORS = {
    400: "Bad request: an unknown event, a body that is not a JSON object, a body where none "
    "is taken, a webhook URL refused (not HTTPS, not public, not resolving).",
    401: "Missing, malformed, unknown, expired or revoked token.",
    403: "The token lacks the route's scope, or is bound to no account.",
    404: "Webhook integration not configured (set a URL via the dashboard first), or no such "
    "resource in your account.",
    408: "The request (headers or body) did not arrive in time.",
    409: "The request conflicts with the account's endpoints (the message names the field): "
    "the most endpoints allowed, a URL another endpoint already has, the primary endpoint.",
    413: "Request body too large.",
    414: "Request target (path and query) too long.",
    415: "The body is not JSON: Content-Type application/json or application/*+json (with a "
    "charset, only UTF-8).",
    422: "A parameter or body field breaks its rule (the message names it): out of range, "
    "not an id, a time that is not RFC 3339 with a zone from 1970 to 9999, an `until` not "
    "after `since`, an integer not in plain digits, a query parameter the route does not take "
    "or one given twice.",
    429: "Rate limited, or too many failed authentications; retry after the Retry-After "
    "header's seconds.",
    431: "Request headers too large, or too many of them.",
    503: "The database cannot take the request for now (disk full, unreachable): nothing was "
    "done; retry after the Retry-After header's seconds.",
}
#: OpenAPI descriptions of every error status, all in the error envelope.
ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in _ERRORS.items()
}
#: What any request can be answered, whatever the route: the HTTP edge's limits
#: (``callhook.edge``), a query parameter the route does not take, an unavailable database.
ANY_ROUTE = (408, 414, 422, 431, 503)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: the token and the one account it acts for."""

    token: Token
    account_id: str


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _check_headers(request: Request, body_limit: int) -> None:
    size = sum(len(name) + len(value) for name, value in request.scope.get("headers", ()))
    if size > MAX_HEADER_BYTES:
        raise StarletteHTTPException(431)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > body_limit:
        raise PayloadTooLarge(f"Request body exceeds {body_limit // 1024} KiB.")


async def read_body(request: Request, limit: int = MAX_JSON_BODY_BYTES) -> bytes:
    """The request body (at most ``limit`` bytes, else 413); read once per request."""
    return await body.read_body(request, limit)


def _may_have_body(request: Request) -> bool:
    declared = request.headers.get("content-length")
    if declared is not None:
        return declared.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


def access(scope: str, *, takes_body: bool = False) -> Callable[..., Awaitable[Caller]]:
    """A dependency that admits a request needing ``scope`` (see the module docstring)."""

    async def admit(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ) -> Caller:
        _check_headers(request, MAX_JSON_BODY_BYTES)
        token = await authenticate_token(request)
        limits_of(request).take(token.id)
        require_scope(token, scope)
        if token.account_id is None:
            raise PermissionDenied(
                "This is a platform token, bound to no account; API v2 needs a token "
                "created for your account."
            )
        if not takes_body and _may_have_body(request) and await read_body(request):
            raise InvalidRequest(f"{request.method} {request.url.path} takes no request body.")
        _check_query(request)
        return Caller(token=token, account_id=token.account_id)

    return admit


def _query_params(route: APIRoute) -> dict[str, bool]:
    """The query parameters ``route`` and its dependencies declare, each with whether it is
    an integer (a few µs: no cache)."""
    found: dict[str, bool] = {}
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        for param in dependant.query_params:
            found[param.alias] = param.field_info.annotation in _INTEGERS
        pending.extend(dependant.dependencies)
    return found


_INTEGERS = (int, int | None)


def _check_query(request: Request) -> None:
    """Step 7 of the module docstring: ``PayloadInvalid`` (422) naming the parameter. An
    integer's text is plain digits: pydantic alone also takes ``1.0``, ``+5``, `` 5`` and
    ``1_000``, which no client means as a page size."""
    items = request.query_params.multi_items()
    if not items:
        return
    route = request.scope.get("route")
    known = _query_params(route) if isinstance(route, APIRoute) else {}
    seen: set[str] = set()
    for name, value in items:
        if name not in known:
            takes = f"it takes: {', '.join(sorted(known))}" if known else "it takes none"
            raise PayloadInvalid(
                f"{_shown(name)}: not a query parameter of this route ({takes}).", field=name
            )
        if name in seen:
            raise PayloadInvalid(
                f"{name}: given more than once; send each query parameter once.", field=name
            )
        if known[name] and not (value.isascii() and value.isdigit()):
            raise PayloadInvalid(f"{name}: must be a whole number in digits.", field=name)
        seen.add(name)


def _shown(name: str) -> str:
    """A parameter name the client made up, as a message may repeat it: printable ASCII as it
    is, anything else quoted with escapes, at most ``_SHOWN`` characters."""
    plain = name.isascii() and name.isprintable() and name != "" and " " not in name
    shown = name if plain else ascii(name)
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 1] + "…"


_SHOWN = 64


Reader = Annotated[Caller, Depends(access(READ))]
Writer = Annotated[Caller, Depends(access(WRITE))]
BodyWriter = Annotated[Caller, Depends(access(WRITE, takes_body=True))]
EndpointWriter = Annotated[Caller, Depends(access(ENDPOINTS_WRITE))]
EndpointBodyWriter = Annotated[Caller, Depends(access(ENDPOINTS_WRITE, takes_body=True))]


def reserved(names: Mapping[str, tuple[str, ...]], param: str) -> Callable[[Request], None]:
    """A dependency answering 405 when path parameter ``param`` is one of ``names``.

    ``/api/v2/webhooks/{event}`` shares its shape with fixed paths (``/webhooks/test``,
    ``/webhooks/available``, ``/webhooks/deliveries``); a method those paths do not allow must
    not fall through to the ``{event}`` route. ``names`` maps each fixed name to its methods.
    """

    def guard(request: Request) -> None:
        value = request.path_params.get(param)
        if isinstance(value, str) and value in names:
            raise StarletteHTTPException(405, headers={"Allow": ", ".join(names[value])})

    return guard


async def read(request: Request, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a read transaction, off the event loop."""
    platform = platform_of(request)

    def run() -> T:
        with platform.db.read() as conn:
            return work(conn)

    return await run_in_threadpool(run)


async def write(request: Request, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a write transaction, off the event loop."""
    platform = platform_of(request)

    def run() -> T:
        with platform.db.write() as conn:
            return work(conn)

    return await run_in_threadpool(run)


def responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses and those of ``ANY_ROUTE``, all in the
    error envelope; ``descriptions`` replaces the generic text of some."""
    chosen = sorted({*statuses, *ANY_ROUTE})
    out: dict[int | str, dict[str, Any]] = {}
    for status in chosen:
        entry = dict(ERROR_RESPONSES[status])
        if descriptions and status in descriptions:
            entry["description"] = descriptions[status]
        out[status] = entry
    return out


def parse_model(raw: bytes, model: type[M]) -> M:
    """A JSON request body as ``model``: 400 when it is not JSON or not an object, 422 naming
    the first field that breaks its rule (wrong JSON type, unknown field, out of range)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("Request body is not valid JSON.") from exc
    if not isinstance(doc, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        elif first["type"] == "string_pattern_mismatch":  # in words, not the regex
            message = pattern_rule(first.get("ctx", {}).get("pattern"))
        else:
            message = first["msg"]
        raise PayloadInvalid(f"{field}: {message}", field=field) from exc


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body itself (``parse_model``)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
