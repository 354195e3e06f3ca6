"""``POST /internal/v1/events``: the telephony core publishes here (scope ``events.write``)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from callhook.api.auth import authenticate
from callhook.api.body import read_body, require_json
from callhook.api.envelope import success
from callhook.api.v2.common import responses
from callhook.events.models import LINE_PATTERN, PBX_ID_PATTERN
from callhook.events.validate import MAX_IDEMPOTENCY_KEY
from callhook.platform import Platform
from callhook.publish import Published, PublishRequest, bind_accounts, parse_publish_body
from callhook.store.group_commit import GroupCommitter

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


@router.post(
    "/internal/v1/events",
    status_code=202,
    summary="Publish one event or a batch of up to 1,000",
    tags=["ingest"],
    openapi_extra={"requestBody": _PUBLISH_BODY},
    responses=_RESPONSES,
)
async def publish_events(request: Request) -> Response:
    platform: Platform = request.app.state.platform
    token = await authenticate(request, scope="events.write")
    require_json(request)
    raw = await read_body(request, platform.settings.max_body_bytes)
    requests = parse_publish_body(raw, max_events=platform.settings.max_batch_events)
    bound = bind_accounts(requests, token_account=token.account_id)
    results = await writer_of(request.app).submit(bound)
    # One increment per event name, not per event (a labelled lookup each: 100 per batch).
    for event, count in Counter(r.event for r in results if not r.duplicate).items():
        platform.metrics.published.labels(event).inc(count)
    return success(request, {"events": [r.as_json() for r in results]}, status=202)


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
