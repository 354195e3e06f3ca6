"""The endpoints of an account: list, add, read, change, delete; secrets and a test event.

Scopes: ``webhooks.read`` to read endpoints; ``endpoints.write`` to add, change or delete them
and to read or rotate their signing secrets (a token has it only when created with it);
``webhooks.write`` to send a test event, as ``POST /api/v2/webhooks/test``.

Every route works on the caller's account only: another account's endpoint id is answered
exactly like an unknown one (404). Bad input is refused before anything is written: a body that
is not a JSON object (400), a field of the wrong JSON type or out of range (422 naming it), an
unknown event in ``subscribed_events`` (400), a URL refused by the vetting (400: HTTPS, public
addresses only, resolving: ``callhook.delivery.resolver.check_url``, as the webhook URL always
was), the account's endpoint limit or a URL another of its endpoints has (409), the primary
endpoint's URL (400: spec 002 has it set in the dashboard) or its deletion (409).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from callhook.api.body import require_json
from callhook.api.envelope import success
from callhook.api.v2.common import (
    EndpointBodyWriter,
    EndpointWriter,
    Reader,
    Writer,
    json_body,
    parse_model,
    platform_of,
    read,
    read_body,
    responses,
    write,
)
from callhook.api.v2.models import (
    EndpointCreate,
    EndpointDeletedResponse,
    EndpointListResponse,
    EndpointResponse,
    EndpointSecretsResponse,
    EndpointUpdate,
    QueuedTestResponse,
)
from callhook.core import throttle
from callhook.delivery.resolver import check_url
from callhook.endpoint_view import endpoint_json, secrets_json
from callhook.errors import IntegrationNotConfigured, NotFound, PayloadInvalid, UnsafeURL
from callhook.events.names import TEST_EVENT
from callhook.platform import Platform
from callhook.publish import Published, send_test_event
from callhook.settings import health_rules
from callhook.store import accounts as account_store
from callhook.store import endpoint_health, endpoint_removal, endpoint_status
from callhook.store import endpoints as endpoint_store
from callhook.store.db import Connection
from callhook.store.endpoints import Endpoint, SigningSecret

router = APIRouter(tags=["endpoints"])

EndpointIdPath = Annotated[
    str,
    Path(
        max_length=64,
        description="An endpoint id (ep_…) of your account.",
        examples=["ep_01JH8Z0000000000000000000A"],
    ),
]
NOT_FOUND = {404: "No endpoint with this id in your account."}


LIMIT_FIELDS = ("rate_limit", "max_in_flight", "replay_on_recovery")


def rules_of(platform: Platform) -> endpoint_health.Rules:
    """The operator's endpoint health rules (settings are checked at start-up)."""
    return endpoint_health.rules_from(platform.settings)


def shown(conn: Connection, platform: Platform, endpoints: list[Endpoint]) -> list[dict[str, Any]]:
    """The endpoints' JSON with their health (one statement for all of them)."""
    status = endpoint_status.statuses(
        conn, [e.id for e in endpoints], now=platform.clock.now(), rules=rules_of(platform)
    )
    return [endpoint_json(e, status[e.id]) for e in endpoints]


def checked_limits(
    platform: Platform, rate_limit: float | None, max_in_flight: int | None
) -> tuple[float | None, int | None]:
    """The throttling fields within the operator's caps, else 422 naming the field."""
    _, _, caps = health_rules(platform.settings)
    problems = throttle.check_limits(rate_limit, max_in_flight, caps)
    for name, message in problems.items():
        raise PayloadInvalid(f"{name}: {message}", field=name)
    return rate_limit, max_in_flight


def apply_limits(
    conn: Connection,
    platform: Platform,
    endpoint: Endpoint,
    given: dict[str, Any],
) -> None:
    """Store the throttling fields ``given`` (any of ``LIMIT_FIELDS``); the others stay."""
    if not given:
        return
    current = endpoint_health.get(conn, endpoint.id, endpoint.account_id)
    rate = given.get("rate_limit", current.rate_limit)
    in_flight = given.get("max_in_flight", current.max_in_flight)
    _, _, caps = health_rules(platform.settings)
    endpoint_health.set_limits(
        conn,
        endpoint.id,
        endpoint.account_id,
        rate_limit=rate,
        max_in_flight=in_flight,
        replay_on_recovery=given.get("replay_on_recovery"),
        caps=caps,
        keep_bucket=rate == current.rate_limit,
    )


async def _vetted(request: Request, url: str) -> str:
    """``url`` parsed, resolved and vetted (400 ``UnsafeURL`` otherwise), normalized."""
    allow_unsafe = platform_of(request).settings.allow_unsafe_targets
    try:
        return (await check_url(url, allow_unsafe=allow_unsafe)).url
    except UnsafeURL as exc:
        raise UnsafeURL(f"url: {exc.message}") from exc


@router.get(
    "/api/v2/endpoints",
    summary="List endpoints",
    description="Every endpoint of your account: the primary one (the webhook setting of "
    "/api/v2/webhooks) first, then the others, oldest first.",
    response_model=EndpointListResponse,
    responses=responses(400, 401, 403, 413, 429, 431),
)
async def list_endpoints(request: Request, caller: Reader) -> Response:
    platform = platform_of(request)

    def work(conn: Connection) -> list[dict[str, Any]]:
        return shown(conn, platform, endpoint_store.list_for_account(conn, caller.account_id))

    return success(request, await read(request, work))


@router.post(
    "/api/v2/endpoints",
    summary="Add an endpoint",
    description="A new endpoint with its own URL, events, retry policy and signing secret "
    "(read it with GET /api/v2/endpoints/{endpoint_id}/secret). From now on every event it "
    "subscribes to is delivered to it too. At most 20 endpoints per account (a setting), "
    "the primary one counted.",
    status_code=201,
    response_model=EndpointResponse,
    responses=responses(400, 401, 403, 409, 413, 415, 422, 429, 431),
    openapi_extra=json_body(EndpointCreate),
)
async def create_endpoint(request: Request, caller: EndpointBodyWriter) -> Response:
    require_json(request)
    body = parse_model(await read_body(request), EndpointCreate)
    platform = platform_of(request)
    checked_limits(platform, body.rate_limit, body.max_in_flight)
    url = await _vetted(request, body.url)

    def work(conn: Connection) -> dict[str, Any]:
        account_store.get(conn, caller.account_id)
        created = endpoint_store.create(
            conn,
            caller.account_id,
            url=url,
            subscribed_events=body.subscribed_events,
            description=body.description,
            retry_policy=body.retry_policy,
            enabled=body.enabled,
            ordering=body.ordering,
            ordering_bound_seconds=body.ordering_bound_seconds,
            max_age_call_control_seconds=body.max_age_call_control_seconds,
            max_age_bulk_seconds=body.max_age_bulk_seconds,
            limit=platform.settings.max_endpoints_per_account,
            allow_unsafe=platform.settings.allow_unsafe_targets,
            now=platform.clock.now(),
            box=platform.box,
            rng=platform.rng,
            rules=rules_of(platform),
        )
        limits = {
            name: getattr(body, name)
            for name in LIMIT_FIELDS
            if name in body.model_fields_set and getattr(body, name) is not None
        }
        apply_limits(conn, platform, created, limits)
        return shown(conn, platform, [created])[0]

    return success(request, await write(request, work), status=201)


@router.get(
    "/api/v2/endpoints/{endpoint_id}",
    summary="Get an endpoint",
    response_model=EndpointResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431, descriptions=NOT_FOUND),
)
async def get_endpoint(request: Request, endpoint_id: EndpointIdPath, caller: Reader) -> Response:
    platform = platform_of(request)

    def work(conn: Connection) -> dict[str, Any]:
        return shown(conn, platform, [endpoint_store.get(conn, caller.account_id, endpoint_id)])[0]

    return success(request, await read(request, work))


@router.patch(
    "/api/v2/endpoints/{endpoint_id}",
    summary="Change an endpoint",
    description="Change the fields given; the others stay. `subscribed_events` replaces the "
    "whole list (null: every event). The primary endpoint's `url` is set in the dashboard, "
    "not here (400). A new `url` makes a failing endpoint active again at once; `enabled` "
    "false disables the endpoint by hand, true re-enables a disabled one. `rate_limit` and "
    "`max_in_flight` (null: none) must be within the operator's caps (422 naming the field, "
    "nothing changed).",
    response_model=EndpointResponse,
    responses=responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 431, descriptions=NOT_FOUND),
    openapi_extra=json_body(EndpointUpdate),
)
async def update_endpoint(
    request: Request, endpoint_id: EndpointIdPath, caller: EndpointBodyWriter
) -> Response:
    require_json(request)
    body = parse_model(await read_body(request), EndpointUpdate)
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    limits = {name: changes.pop(name) for name in LIMIT_FIELDS if name in changes}
    platform = platform_of(request)
    if "replay_on_recovery" in limits and limits["replay_on_recovery"] is None:
        raise PayloadInvalid(
            "replay_on_recovery: must be true or false", field="replay_on_recovery"
        )
    checked_limits(platform, limits.get("rate_limit"), limits.get("max_in_flight"))
    if "url" in changes:
        # The primary endpoint's URL is refused before any DNS lookup.
        current = await read(
            request, lambda conn: endpoint_store.get(conn, caller.account_id, endpoint_id)
        )
        if not current.primary:
            changes["url"] = await _vetted(request, changes["url"])

    def work(conn: Connection) -> dict[str, Any]:
        endpoint = endpoint_store.get(conn, caller.account_id, endpoint_id)
        if changes:
            endpoint = endpoint_store.update(
                conn,
                caller.account_id,
                endpoint_id,
                allow_unsafe=platform.settings.allow_unsafe_targets,
                now=platform.clock.now(),
                rules=rules_of(platform),
                **changes,
            )
        apply_limits(conn, platform, endpoint, limits)
        return shown(conn, platform, [endpoint_store.get(conn, caller.account_id, endpoint_id)])[0]

    return success(request, await write(request, work))


@router.delete(
    "/api/v2/endpoints/{endpoint_id}",
    summary="Delete an endpoint",
    description="Delete an endpoint with its secrets and its deliveries (the events stay, "
    "with their deliveries to your other endpoints). Its deliveries go in batches, the "
    "least useful first, while it keeps working; the endpoint goes with the last one. If the "
    "request fails on the way, the endpoint is still there with part of its deliveries gone: "
    "send the DELETE again (a 404 then means a cut-off removal finished on the server). The "
    "primary endpoint cannot be deleted (409): disable it instead.",
    response_model=EndpointDeletedResponse,
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429, 431, descriptions=NOT_FOUND),
)
async def delete_endpoint(
    request: Request, endpoint_id: EndpointIdPath, caller: EndpointWriter
) -> Response:
    removal = await run_in_threadpool(
        endpoint_removal.remove_endpoint, platform_of(request).db, caller.account_id, endpoint_id
    )
    return success(
        request, {"id": endpoint_id, "deleted": True, "deliveries_deleted": removal.deliveries}
    )


@router.get(
    "/api/v2/endpoints/{endpoint_id}/secret",
    summary="Read an endpoint's signing secrets",
    description="Every secret signing the endpoint's deliveries now, the current one first: "
    "during a rotation the previous one keeps signing until its `expires_at`. Needs "
    "`endpoints.write`: a secret is as sensitive as the right to change the endpoint.",
    response_model=EndpointSecretsResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431, descriptions=NOT_FOUND),
)
async def read_secret(
    request: Request, endpoint_id: EndpointIdPath, caller: EndpointWriter
) -> Response:
    platform = platform_of(request)

    def work(conn: Connection) -> list[SigningSecret]:
        return endpoint_store.active_secrets(
            conn, caller.account_id, endpoint_id, now=platform.clock.now(), box=platform.box
        )

    return success(request, secrets_json(await read(request, work)))


@router.post(
    "/api/v2/endpoints/{endpoint_id}/secret/rotate",
    summary="Rotate an endpoint's signing secret",
    description="A new current secret signs from now on; the previous one keeps signing for "
    "24 hours beside it (deliveries carry both signatures), so you can switch without "
    "losing a webhook. Returns the secrets signing now.",
    response_model=EndpointSecretsResponse,
    responses=responses(400, 401, 403, 404, 413, 422, 429, 431, descriptions=NOT_FOUND),
)
async def rotate_secret(
    request: Request, endpoint_id: EndpointIdPath, caller: EndpointWriter
) -> Response:
    platform = platform_of(request)

    def work(conn: Connection) -> list[SigningSecret]:
        now = platform.clock.now()
        endpoint_store.rotate_secret(
            conn, caller.account_id, endpoint_id, now=now, box=platform.box, rng=platform.rng
        )
        return endpoint_store.active_secrets(
            conn, caller.account_id, endpoint_id, now=now, box=platform.box
        )

    return success(request, secrets_json(await write(request, work)))


@router.post(
    "/api/v2/endpoints/{endpoint_id}/test",
    summary="Send a test event to an endpoint",
    description="Queue a `test` event to this endpoint only (even while it is disabled) and "
    "return its delivery id. Needs `webhooks.write`, as POST /api/v2/webhooks/test.",
    status_code=202,
    response_model=QueuedTestResponse,
    responses=responses(
        400,
        401,
        403,
        404,
        413,
        422,
        429,
        431,
        descriptions={404: "No endpoint with this id in your account, or it has no URL yet."},
    ),
)
async def send_test(request: Request, endpoint_id: EndpointIdPath, caller: Writer) -> Response:
    platform = platform_of(request)
    endpoint = await read(
        request, lambda conn: endpoint_store.get(conn, caller.account_id, endpoint_id)
    )
    if endpoint.url is None:  # a primary endpoint not configured yet
        raise IntegrationNotConfigured()

    def publish() -> Published:
        return send_test_event(
            platform.publisher,
            account_id=caller.account_id,
            now=platform.clock.now(),
            endpoint_id=endpoint.id,
        )

    published = await run_in_threadpool(publish)
    if published.delivery_id is None:  # deleted (or its URL removed) in the meantime
        raise NotFound(f"Endpoint '{endpoint_id}' not found.")
    return success(
        request,
        {"delivery_id": published.delivery_id, "event_id": published.id, "event": TEST_EVENT},
        status=202,
    )
