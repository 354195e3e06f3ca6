"""Rendering dashboard pages: one Jinja2 environment, safe defaults on every response.

Contracts
---------
* Autoescaping is on for every template; nothing user-supplied is marked safe.
* Every page is sent with a strict Content-Security-Policy (only our own static files, no inline
  script), ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin`` and
  ``Cache-Control: no-store`` (pages can show a secret or a token once).
* Times are shown in UTC, always labelled as such.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> Markup:
    """A datetime as UTC text in a ``<time>`` element (``—`` for None). On wide screens the
    stylesheet keeps a ``<time>`` on one line, so a table's time column does not wrap into three."""
    if value is None:
        return Markup("—")
    utc = value.astimezone(UTC)
    machine = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}">{} UTC</time>').format(machine, utc.strftime(fmt))


def clock_time(value: datetime, now: datetime) -> str:
    """``10:42`` today, ``Jan 14 10:42`` on another day (UTC), as the failure banner says it."""
    value, now = value.astimezone(UTC), now.astimezone(UTC)
    if value.date() == now.date():
        return value.strftime("%H:%M")
    return value.strftime("%b %d %H:%M").replace(" 0", " ")


def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms"


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f} %"


def pretty_json(raw: bytes | str | None) -> str:
    """JSON indented for reading; anything that is not JSON comes back unchanged."""
    if raw is None:
        return ""
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def breakable(value: object) -> Markup:
    """``value`` escaped, with a line-break opportunity after each ``_`` (``<wbr>``), so that
    ``incoming_call_end_chain_member_call`` wraps at its words in a narrow column."""
    return Markup(str(escape(value)).replace("_", "_<wbr>"))  # noqa: S704 - escaped first


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["ms"] = milliseconds
    env.filters["percent"] = percent
    env.filters["pretty_json"] = pretty_json
    env.filters["breakable"] = breakable
    return env


_ENV = _environment()


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """Render ``template`` with ``context`` (plus ``request``, ``viewer``, ``csrf_token``)."""
    viewer = getattr(request.state, "viewer", None)
    settings = getattr(request.app.state, "settings", None)
    values: dict[str, Any] = {
        "request": request,
        "viewer": viewer,
        "csrf_token": viewer.csrf_token if viewer is not None else "",
        "path": request.url.path,
        # The development setting: pages say what it allows instead of production's rules.
        "unsafe_targets": bool(getattr(settings, "allow_unsafe_targets", False)),
    }
    values.update(context or {})
    html = _ENV.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
