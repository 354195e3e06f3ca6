"""``POST /internal/v1/events``: the telephony core publishes here (scope ``events.write``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from callhook.api import errors as error_mapping
from callhook.api.auth import (
    authenticate,
    authenticate_in,
    bearer,
    client_address,
    limits_of,
    require_scope,
)
from callhook.api.body import read_body, require_json
from callhook.api.envelope import success
from callhook.api.v2.common import responses
from callhook.core.clock import Clock
from callhook.errors import AuthenticationFailed, CallhookError, Unavailable
from callhook.events.models import LINE_PATTERN, PBX_ID_PATTERN
from callhook.events.validate import MAX_IDEMPOTENCY_KEY
from callhook.platform import Platform
from callhook.publish import Published, PublishRequest, bind_accounts, parse_publish_body
from callhook.store.db import Connection
from callhook.store.group_commit import GroupCommitter
from callhook.store.tokens import Token

IngestWriter = GroupCommitter[PublishRequest, Published]

router = APIRouter()


_ONE_EVENT = {
    "type": "object",
    "title": "PublishEvent",
    "required": ["event", "pbx_id", "data"],
    "additionalProperties": False,
    "properties": {
        "event": {"type": "string", "description": "An event name of the catalog."},
        "pbx_id": {
            "type": "string",
            "pattern": PBX_ID_PATTERN,
            "description": "The subject's PBX id: the data field docs/events.md names.",
        },
        "account_id": {
            "type": "string",
            "pattern": PBX_ID_PATTERN,
            "description": "The account; only with a platform token (bound tokens imply it).",
        },
        "data": {"type": "object", "description": "The event's payload (docs/events.md)."},
        "idempotency_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_IDEMPOTENCY_KEY,
            "pattern": LINE_PATTERN,
        },
    },
}
_PUBLISH_BODY = {
    "required": True,
    "description": 'One event object, or a batch: {"events": [...]} (1 to 1,000 events). '
    "JSON, at most 256 KiB by default. Scope events.write.",
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    _ONE_EVENT,
                    {
                        "type": "object",
                        "title": "PublishBatch",
                        "required": ["events"],
                        "additionalProperties": False,
                        "properties": {
                            "events": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 1000,
                                "items": _ONE_EVENT,
                            }
                        },
                    },
                ]
            }
        }
    },
}


#: Every status ingest answers besides 202, all in the error envelope.
_RESPONSES = responses(
    400,
    401,
    403,
    413,
    415,
    422,
    429,
    descriptions={
        400: "Malformed JSON, a body of the wrong shape, or an unknown event name.",
        403: "The token lacks events.write, or publishes for another account.",
        413: "Request body over the limit (256 KiB by default).",
        415: "Content-Type is not application/json or application/*+json (with a charset, "
        "only UTF-8).",
        422: "An event's payload breaks its catalog model; the error names the field.",
    },
)


#: The scope a token needs to publish.
SCOPE = "events.write"
PATH = "/internal/v1/events"


@router.post(
    PATH,
    status_code=202,
    summary="Publish one event or a batch of up to 1,000",
    tags=["ingest"],
    openapi_extra={"requestBody": _PUBLISH_BODY},
    responses=_RESPONSES,
)
async def publish_events(request: Request) -> Response:
    # Normally answered by ``IngestFastPath`` before FastAPI routes it; the same work.
    return await handle_publish(request)


async def handle_publish(request: Request) -> Response:
    """Publish the request's events; the 202 response once they are committed.

    The checks and their order are those of every API route: the credential first (401, or
    429 after repeated failures), then its scope (403), the media type (415), the body's size
    (413), its JSON and the events (400/422), the accounts (403/422). The token is verified in
    the group commit's transaction (``_prepare``), which saves each request a thread hop and a
    read transaction; a request whose body is refused is authenticated the ordinary way first,
    so that a bad token still answers 401 before a bad body answers 400.
    """
    platform: Platform = request.app.state.platform
    presented = request.headers.get("authorization")
    if presented is None:
        bearer(request)  # raises: the header is missing
    assert presented is not None
    try:
        require_json(request)
        raw = await read_body(request, platform.settings.max_body_bytes)
        requests = parse_publish_body(raw, max_events=platform.settings.max_batch_events)
    except CallhookError:
        await authenticate(request, scope=SCOPE)  # its 401/403/429 come first
        raise
    clock = platform.clock
    async with limits_of(request).credential(client_address(request), presented) as credential:
        try:
            plaintext = bearer(request)

            def prepare(
                conn: Connection, memo: dict[Any, Any], items: Sequence[PublishRequest]
            ) -> Sequence[PublishRequest]:
                return _prepare(conn, memo, items, plaintext, clock)

            results = await writer_of(request.app).submit(requests, prepare=prepare)
        except AuthenticationFailed as exc:
            limited = credential.invalid()
            if limited is not None:
                raise limited from exc
            raise
        except Unavailable:
            raise  # the token was not looked at
        except CallhookError:
            credential.valid()  # the token passed; something after it did not
            raise
        credential.valid()
    # One increment per event name, not per event (a labelled lookup each: 100 per batch).
    for event, count in Counter(r.event for r in results if not r.duplicate).items():
        platform.metrics.published.labels(event).inc(count)
    return success(request, {"events": [r.as_json() for r in results]}, status=202)


def _prepare(
    conn: Connection,
    memo: dict[Any, Any],
    items: Sequence[PublishRequest],
    plaintext: str,
    clock: Clock,
) -> Sequence[PublishRequest]:
    """In the group's transaction: the token (looked up once per group), its scope, and the
    account each event is published for (``bind_accounts``). Writes only the token's last use
    (once a minute), and never before raising."""
    token = memo.get(plaintext)
    if token is None:
        try:
            token = authenticate_in(conn, plaintext, clock.now())
        except AuthenticationFailed as exc:
            token = exc
        memo[plaintext] = token
    if isinstance(token, AuthenticationFailed):
        raise AuthenticationFailed(token.message)
    assert isinstance(token, Token)
    require_scope(token, SCOPE)
    return bind_accounts(items, token_account=token.account_id)


class IngestFastPath:
    """Pure ASGI middleware: ``POST /internal/v1/events`` goes straight to ``handle_publish``.

    FastAPI's routing (a regular expression per route until one matches), dependency solving
    and exception middleware cost a single-event publish about a sixth of its CPU time
    (docs/performance.md). The answers are the route's: errors go through the same handlers
    (``callhook.api.errors``), anything unexpected up to the app's 500 handler; request ids come
    from ``RequestIdMiddleware`` outside this one. Every other request passes through.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await handle_publish(request)
        except CallhookError as exc:
            response = await error_mapping.on_callhook_error(request, exc)
        except ClientDisconnect as exc:
            response = await error_mapping.on_client_disconnect(request, exc)
        await response(scope, receive, send)


def ingest_writer(platform: Platform) -> IngestWriter:
    """The app's group committer for publishes: concurrent requests share a transaction, each
    answered 202 after the commit; one wake-up per group that queued deliveries."""
    publisher = platform.publisher

    def after_commit(results: list[Published]) -> None:
        if any(r.delivery_id for r in results):
            publisher.notify()

    return GroupCommitter(
        platform.db, publisher.write, after_commit=after_commit, name="ingest-writer"
    )


def writer_of(app: FastAPI) -> IngestWriter:
    """``app.state.ingest_writer``, made on first use for an app built without one."""
    writer: IngestWriter | None = getattr(app.state, "ingest_writer", None)
    if writer is None:
        writer = app.state.ingest_writer = ingest_writer(app.state.platform)
    return writer
