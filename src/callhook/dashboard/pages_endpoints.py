"""Endpoints: the list (with each one's health at a glance), add, edit, enable or disable,
delete (after a confirmation page), and each endpoint's secret, test event and deliveries.

Contracts
---------
* Every read and write is scoped to the viewer's account: another account's endpoint id, or one
  that cannot exist, is a 404 page.
* Saving vets the URL first (:func:`callhook.delivery.resolver.check_url`, as the webhook page
  always has) and checks every other field; any problem (a refused URL, one another endpoint
  has, the account's endpoint limit, an unknown event, a description too long) re-renders the
  form with the message next to its field and stores nothing.
* The primary endpoint (spec 002's webhook setting) is edited at ``/dashboard/webhook``, its
  secret at ``/dashboard/secret`` (``pages_webhook``); ``/dashboard/endpoints/{its id}`` leads
  there. It cannot be deleted.
* An endpoint's secret and test event are ``pages_endpoint_tools``'; its health (state, banner,
  pause and resume, throttling, event log) ``pages_endpoint_health``'.

A new endpoint field is a field of :class:`EndpointForm`, a line in :meth:`EndpointForm.read`
and :func:`changes`, and an input in ``_endpoint_form.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callhook.core import ordering as ordering_rules
from callhook.core.ordering import Ordering
from callhook.core.outcome import ErrorClass
from callhook.core.retry import RETRY_POLICIES, RetryPolicy
from callhook.core.typed_numbers import whole_number
from callhook.dashboard import hints
from callhook.dashboard import pages_endpoint_health as health_pages
from callhook.dashboard.auth import (
    CheckedForm,
    CurrentViewer,
    DashboardRoute,
    platform_of,
    text,
    texts,
)
from callhook.dashboard.render import page
from callhook.delivery.resolver import check_url
from callhook.errors import Conflict, PayloadInvalid, UnsafeURL
from callhook.events import DESCRIPTIONS, EVENT_GROUPS, SUBSCRIBABLE_EVENTS
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store import endpoint_removal, endpoint_status
from callhook.store import endpoints as endpoint_store
from callhook.store import stats as stats_store
from callhook.store.endpoints import MAX_DESCRIPTION, Endpoint, EndpointState

router = APIRouter(route_class=DashboardRoute)

#: Deliveries shown on an endpoint's page (the Deliveries page has them all).
RECENT = 10
_SAVED = {"1": "Endpoint saved.", "added": "Endpoint added. Its signing secret is below."}
_HEALTH_DONE = {
    "paused": "Paused: new events wait, in order, until you resume.",
    "resumed": "Resumed: deliveries go out again, what waited first.",
    "disabled": "A disabled endpoint cannot be paused: enable (resume) it first.",
}


#: The ordering fields typed as numbers of seconds (issue 14).
ORDERING_NUMBERS = (
    "ordering_bound_seconds",
    "max_age_call_control_seconds",
    "max_age_bulk_seconds",
)


#: Number fields are read whole (the request body's limit bounds them): cut after stripping,
#: "1", many spaces and junk read as 1.
_UNCUT = 1 << 30


def _posted(posted: FormData, name: str) -> str | None:
    """A short field as submitted, or None when the form did not have it."""
    return text(posted, name, limit=_UNCUT) if name in posted else None


def _blank(seconds: int | None) -> str:
    return "" if seconds is None else str(seconds)


def _int_or_text(raw: str) -> object:
    number = whole_number(raw)
    return raw if number is None else number  # text is refused by ``parse_seconds``, naming it


@dataclass
class EndpointForm:
    """What an endpoint's form shows: stored values, or what was just submitted."""

    url: str = ""
    description: str = ""
    enabled: bool = True
    retry_policy: str = RetryPolicy.EXPONENTIAL
    #: Every event, present and future (``subscribed_events`` null).
    all_events: bool = False
    events: set[str] = field(default_factory=set)
    #: Throttling, as typed (blank: no limit); checked by ``pages_endpoint_health``.
    rate_limit: str = ""
    max_in_flight: str = ""
    # Ordered delivery per call (issue 14), as typed (checked by ``vet``); "" for no max age;
    # None: not in the submitted form (a client that does not know them): left as they are.
    ordering: str | None = Ordering.PER_CALL
    ordering_bound_seconds: str | None = "300"
    max_age_call_control_seconds: str | None = ""
    max_age_bulk_seconds: str | None = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, endpoint: Endpoint, platform: Platform | None = None) -> EndpointForm:
        rate, cap = "", ""
        if platform is not None:
            with platform.db.read() as conn:
                rate, cap = health_pages.limit_texts(
                    endpoint_status.statuses(
                        conn,
                        [endpoint.id],
                        now=platform.clock.now(),
                        rules=health_pages.rules_of(platform),
                    )[endpoint.id]
                )
        return cls(
            rate_limit=rate,
            max_in_flight=cap,
            url=endpoint.url or "",
            description=endpoint.description,
            enabled=endpoint.enabled,
            retry_policy=endpoint.retry_policy,
            all_events=endpoint.subscribed_events is None,
            events=set(
                SUBSCRIBABLE_EVENTS
                if endpoint.subscribed_events is None
                else endpoint.subscribed_events
            ),
            ordering=endpoint.ordering,
            ordering_bound_seconds=str(endpoint.ordering_bound_seconds),
            max_age_call_control_seconds=_blank(endpoint.max_age_call_control_seconds),
            max_age_bulk_seconds=_blank(endpoint.max_age_bulk_seconds),
        )

    @classmethod
    def read(cls, posted: FormData) -> EndpointForm:
        return cls(
            url=text(posted, "url", limit=4096),
            # One character over the limit is kept, so that a long text is refused, not cut.
            description=text(posted, "description", limit=MAX_DESCRIPTION + 1),
            enabled=text(posted, "enabled") == "on",
            retry_policy=text(posted, "retry_policy"),
            all_events=text(posted, "all_events") == "on",
            events=set(texts(posted, "events")),
            rate_limit=text(posted, "rate_limit", limit=_UNCUT),
            max_in_flight=text(posted, "max_in_flight", limit=_UNCUT),
            ordering=_posted(posted, "ordering"),
            ordering_bound_seconds=_posted(posted, "ordering_bound_seconds"),
            max_age_call_control_seconds=_posted(posted, "max_age_call_control_seconds"),
            max_age_bulk_seconds=_posted(posted, "max_age_bulk_seconds"),
        )

    def limits(self, platform: Platform) -> tuple[float | None, int | None]:
        """The throttling fields, checked (messages into ``errors``)."""
        return health_pages.parse_limits(platform, self.rate_limit, self.max_in_flight, self.errors)

    def seconds(self, name: str) -> int | None:
        """One of ``ORDERING_NUMBERS`` as stored (blank: None for a max age); ``PayloadInvalid``
        naming the field when it is not whole seconds in range."""
        raw = (getattr(self, name) or "").strip()
        optional = name != "ordering_bound_seconds"
        value: object = None if (optional and not raw) else _int_or_text(raw)
        return ordering_rules.parse_seconds(value, field_name=name, optional=optional)

    def ordering_fields(self) -> dict[str, Any]:
        """The ordering fields to store (after ``vet`` found them valid)."""
        out: dict[str, Any] = {}
        if self.ordering is not None:
            out["ordering"] = ordering_rules.parse_ordering(self.ordering)
        out.update({n: self.seconds(n) for n in ORDERING_NUMBERS if getattr(self, n) is not None})
        return out

    @property
    def subscribed_events(self) -> list[str] | None:
        """The events to store, in catalog order (None: every event)."""
        if self.all_events:
            return None
        return [e for e in SUBSCRIBABLE_EVENTS if e in self.events]


def preset(posted: FormData, form: EndpointForm) -> bool:
    """The no-JavaScript "select all / none" buttons: change the boxes and save nothing yet."""
    choice = text(posted, "events_preset")
    if choice not in ("all", "none"):
        return False
    form.events = set(SUBSCRIBABLE_EVENTS) if choice == "all" else set()
    return True


async def vet(platform: Platform, form: EndpointForm) -> str:
    """Check every field (messages into ``form.errors``); return the normalized URL."""
    normalized = ""
    if not form.url:
        form.errors["url"] = "Enter the HTTPS URL of your endpoint."
    else:
        try:
            vetted = await check_url(form.url, allow_unsafe=platform.settings.allow_unsafe_targets)
            normalized = vetted.url
        except UnsafeURL as exc:
            form.errors["url"] = exc.message
    if len(form.description) > MAX_DESCRIPTION:
        form.errors["description"] = f"At most {MAX_DESCRIPTION} characters."
    if form.retry_policy not in RETRY_POLICIES:
        form.errors["retry_policy"] = "Choose a retry policy."
    unknown = sorted(form.events - set(SUBSCRIBABLE_EVENTS))
    if unknown:
        form.errors["events"] = f"Unknown event(s): {', '.join(unknown)}."
    form.limits(platform)
    try:
        if form.ordering is not None:
            ordering_rules.parse_ordering(form.ordering)
    except PayloadInvalid:
        form.errors["ordering"] = "Choose per call or none."
    for name in ORDERING_NUMBERS:
        if getattr(form, name) is None:
            continue
        try:
            form.seconds(name)
        except PayloadInvalid as exc:
            form.errors[name] = exc.message.removeprefix(f"{name}: ").capitalize() + "."
    return normalized


def changes(form: EndpointForm) -> dict[str, Any]:
    """Every field of the form but the URL, as ``endpoint_store.update`` takes them."""
    return {
        "description": form.description,
        "enabled": form.enabled,
        "retry_policy": form.retry_policy,
        "subscribed_events": form.subscribed_events,
        **form.ordering_fields(),
    }


def refused(form: EndpointForm, exc: Conflict) -> None:
    """A store refusal (limit, duplicate URL) shown next to the field it names."""
    where = getattr(exc, "field", None) or "url"
    message = exc.message.removeprefix(f"{where}: ")
    form.errors[where] = message[:1].upper() + message[1:]


def form_context(form: EndpointForm) -> dict[str, Any]:
    """What ``_endpoint_form.html`` needs besides its action."""
    return {
        "form": form,
        "groups": [
            (name, [(e, DESCRIPTIONS[e], e in form.events) for e in events])
            for name, events in EVENT_GROUPS
        ],
        "policies": RETRY_POLICIES,
        "event_count": len(SUBSCRIBABLE_EVENTS),
        "selected_count": len(SUBSCRIBABLE_EVENTS) if form.all_events else len(form.events),
    }


def links(endpoint: Endpoint | None) -> dict[str, str | None]:
    """Where an endpoint's page posts: the primary one keeps the webhook pages' addresses."""
    if endpoint is None:
        return {"save": "/dashboard/endpoints", "test": None, "secret": None, "delete": None}
    if endpoint.primary:
        return {
            "save": "/dashboard/webhook",
            "test": "/dashboard/test",
            "secret": "/dashboard/secret",
            "delete": None,
        }
    base = f"/dashboard/endpoints/{endpoint.id}"
    return {
        "save": base,
        "test": f"{base}/test",
        "secret": f"{base}/secret",
        "delete": f"{base}/delete",
    }


def glance(item: stats_store.EndpointGlance | None, endpoint: Endpoint) -> dict[str, str]:
    """A pill for an endpoint's health: (text, class)."""
    if endpoint.url is None:
        return {"text": "no URL yet", "class": "wait"}
    if endpoint.state is EndpointState.PAUSED:
        return {"text": "paused", "class": "wait"}
    if endpoint.state is EndpointState.FAILING:
        return {"text": "failing: probing", "class": "bad"}
    if not endpoint.enabled or endpoint.state is EndpointState.DISABLED:
        return {"text": "disabled", "class": "wait"}
    if item is None or item.last_ok is None:
        return {"text": "no deliveries yet", "class": ""}
    if item.last_ok:
        return {"text": "healthy", "class": "ok"}
    error = hints.label(item.last_error)
    if item.last_error == ErrorClass.HTTP_STATUS and item.last_status_code is not None:
        error = f"HTTP {item.last_status_code}"
    return {"text": f"failing: {error}", "class": "bad"}


def endpoint_page(
    request: Request,
    account_id: str,
    endpoint: Endpoint | None,
    form: EndpointForm,
    *,
    status: int = 200,
) -> Response:
    """An endpoint's page (its form, test event, secret, recent deliveries), or the "Add an
    endpoint" page when ``endpoint`` is None."""
    platform = platform_of(request)
    recent: list[delivery_store.Delivery] = []
    health: dict[str, Any] = {}
    if endpoint is not None:
        with platform.db.read() as conn:
            recent = delivery_store.list_deliveries(
                conn, account_id=account_id, endpoint_id=endpoint.id, limit=RECENT
            )
            health = health_pages.health_context(conn, platform, endpoint)
    saved = request.query_params.get("saved", "")
    primary = endpoint is not None and endpoint.primary
    return page(
        request,
        "endpoint.html",
        {
            **form_context(form),
            "endpoint": endpoint,
            "links": links(endpoint),
            "recent": recent,
            "saved": _HEALTH_DONE.get(saved)
            or (("Webhook settings saved." if primary else _SAVED.get(saved)) if saved else None),
            "label": hints.label,
            **health,
        },
        status=status,
    )


def get_endpoint(platform: Platform, account_id: str, endpoint_id: str) -> Endpoint:
    """The account's endpoint (``EndpointNotFound``, a 404 page, for any other id)."""
    with platform.db.read() as conn:
        return endpoint_store.get(conn, account_id, endpoint_id)


# --- The list -----------------------------------------------------------------------------------
@router.get("/endpoints")
def endpoints_page(request: Request, who: CurrentViewer) -> Response:
    platform = platform_of(request)
    now = platform.clock.now()
    with platform.db.read() as conn:
        rows = endpoint_store.list_for_account(conn, who.account_id)
        glances = stats_store.endpoint_glances(conn, who.account_id, [e.id for e in rows], now=now)
    items = [
        {
            "endpoint": e,
            "glance": glances.get(e.id),
            "pill": glance(glances.get(e.id), e),
            "href": "/dashboard/webhook" if e.primary else f"/dashboard/endpoints/{e.id}",
        }
        for e in rows
    ]
    return page(
        request,
        "endpoints.html",
        {
            "endpoint_rows": items,
            "limit": platform.settings.max_endpoints_per_account,
            "changed": {
                "deleted": "Endpoint deleted.",
                "enabled": "Endpoint enabled.",
                "disabled": "Endpoint disabled.",
            }.get(request.query_params.get("done", "")),
        },
    )


@router.get("/endpoints/new")
def new_endpoint_page(request: Request, who: CurrentViewer) -> Response:
    return endpoint_page(request, who.account_id, None, EndpointForm())


@router.post("/endpoints")
async def create_endpoint(request: Request, who: CurrentViewer, posted: CheckedForm) -> Response:
    platform = platform_of(request)
    form = EndpointForm.read(posted)
    if preset(posted, form):
        return endpoint_page(request, who.account_id, None, form)
    url = await vet(platform, form)
    if not form.errors:
        rate, cap = form.limits(platform)

        def create() -> Endpoint:
            with platform.db.write() as conn:
                created = endpoint_store.create(
                    conn,
                    who.account_id,
                    url=url,
                    limit=platform.settings.max_endpoints_per_account,
                    allow_unsafe=platform.settings.allow_unsafe_targets,
                    now=platform.clock.now(),
                    box=platform.box,
                    rng=platform.rng,
                    rules=health_pages.rules_of(platform),
                    **changes(form),
                )
                health_pages.store_limits(conn, platform, created, rate, cap)
                return created

        try:
            created = await run_in_threadpool(create)
        except Conflict as exc:
            refused(form, exc)
        else:
            return RedirectResponse(
                f"/dashboard/endpoints/{created.id}?saved=added", status_code=303
            )
    return endpoint_page(request, who.account_id, None, form, status=400)


# --- One endpoint -------------------------------------------------------------------------------
@router.get("/endpoints/{endpoint_id}")
def one_endpoint_page(request: Request, who: CurrentViewer, endpoint_id: str) -> Response:
    endpoint = get_endpoint(platform_of(request), who.account_id, endpoint_id)
    if endpoint.primary:
        return RedirectResponse("/dashboard/webhook", status_code=303)
    return endpoint_page(
        request, who.account_id, endpoint, EndpointForm.of(endpoint, platform_of(request))
    )


@router.post("/endpoints/{endpoint_id}")
async def save_endpoint(
    request: Request, who: CurrentViewer, endpoint_id: str, posted: CheckedForm
) -> Response:
    platform = platform_of(request)
    endpoint = await run_in_threadpool(get_endpoint, platform, who.account_id, endpoint_id)
    return await save(request, who.account_id, endpoint, posted)


async def save(request: Request, account_id: str, endpoint: Endpoint, posted: FormData) -> Response:
    """Save an endpoint's form (the primary one's too: its URL only the dashboard sets)."""
    platform = platform_of(request)
    form = EndpointForm.read(posted)
    if preset(posted, form):
        return endpoint_page(request, account_id, endpoint, form)
    url = await vet(platform, form)
    if not form.errors:
        rate, cap = form.limits(platform)
        rules = health_pages.rules_of(platform)

        def write() -> None:
            now = platform.clock.now()
            with platform.db.write() as conn:
                if endpoint.primary:
                    endpoint_store.set_primary_url(
                        conn,
                        account_id,
                        url,
                        now=now,
                        box=platform.box,
                        rng=platform.rng,
                        rules=rules,
                    )
                    fields = changes(form)
                else:
                    fields = {**changes(form), "url": url}
                endpoint_store.update(
                    conn,
                    account_id,
                    endpoint.id,
                    allow_unsafe=platform.settings.allow_unsafe_targets,
                    now=now,
                    rules=rules,
                    **fields,
                )
                health_pages.store_limits(conn, platform, endpoint, rate, cap)

        try:
            await run_in_threadpool(write)
        except Conflict as exc:
            refused(form, exc)
        else:
            where = "/dashboard/webhook" if endpoint.primary else links(endpoint)["save"]
            return RedirectResponse(f"{where}?saved=1", status_code=303)
    return endpoint_page(request, account_id, endpoint, form, status=400)


@router.post("/endpoints/{endpoint_id}/enabled")
def set_enabled(
    request: Request, who: CurrentViewer, endpoint_id: str, posted: CheckedForm
) -> Response:
    """The list's Enable / Disable buttons."""
    platform = platform_of(request)
    enabled = text(posted, "enabled") == "on"
    with platform.db.write() as conn:
        endpoint_store.update(
            conn,
            who.account_id,
            endpoint_id,
            enabled=enabled,
            now=platform.clock.now(),
            rules=health_pages.rules_of(platform),
        )
    done = "enabled" if enabled else "disabled"
    return RedirectResponse(f"/dashboard/endpoints?done={done}", status_code=303)


@router.get("/endpoints/{endpoint_id}/delete")
def confirm_delete(request: Request, who: CurrentViewer, endpoint_id: str) -> Response:
    """The confirmation page: what deleting takes with it, and the button that does it."""
    platform = platform_of(request)
    with platform.db.read() as conn:
        endpoint = endpoint_store.get(conn, who.account_id, endpoint_id)
        count = delivery_store.count_for_endpoint(conn, endpoint.id)
    if endpoint.primary:
        return RedirectResponse("/dashboard/webhook", status_code=303)
    return page(request, "endpoint_delete.html", {"endpoint": endpoint, "deliveries": count})


@router.post("/endpoints/{endpoint_id}/delete")
def delete_endpoint(
    request: Request, who: CurrentViewer, endpoint_id: str, _form: CheckedForm
) -> Response:
    endpoint_removal.remove_endpoint(platform_of(request).db, who.account_id, endpoint_id)
    return RedirectResponse("/dashboard/endpoints?done=deleted", status_code=303)


__all__ = ["EndpointForm", "endpoint_page", "get_endpoint", "links", "router", "save"]
