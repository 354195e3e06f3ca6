"""Alert mail, rendered: subject and plain-text body from Jinja2 templates (``templates/``),
assembled into one ``EmailMessage``. Pure: building a message does no I/O.

Plain text only: the endpoint URL and the error text come from the customer's side, and a
text body cannot be made to run or hide anything. Header values are reduced to one line, so
nothing in ``data`` can add a header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from callhook.alerts.model import Alert

TEMPLATES = Path(__file__).parent / "templates"
SUBJECT_PREFIX = "[Callhook] "
MAX_SUBJECT = 200

# Plain text, never HTML: nothing here is interpreted, so autoescaping would only mangle it.
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701 - plain-text mail, see above
    keep_trailing_newline=True,
)
_space = re.compile(r"\s+")


def one_line(text: str, limit: int) -> str:
    """``text`` with every run of whitespace (newlines included) as one space, cut to
    ``limit`` characters."""
    flat = _space.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def endpoint_name(alert: Alert) -> str:
    """How the mail names the endpoint: its URL when the alert carries one, else its id."""
    url = alert.data.get("url")
    return one_line(url, 120) if isinstance(url, str) and url else alert.endpoint_id


def subject(alert: Alert) -> str:
    """The mail's subject, one line: ``[Callhook] Endpoint https://… is failing``."""
    text = _env.get_template("subject.txt").render(
        kind=str(alert.kind), name=endpoint_name(alert), data=alert.data
    )
    return one_line(SUBJECT_PREFIX + text, MAX_SUBJECT)


def body(alert: Alert, *, link: str) -> str:
    """The mail's plain-text body: what happened, what follows, and ``link`` to the
    dashboard."""
    return _env.get_template("body.txt").render(
        kind=str(alert.kind),
        name=endpoint_name(alert),
        data=alert.data,
        link=link,
        account_id=alert.account_id,
    )


def message(alert: Alert, *, sender: str, recipients: Sequence[str], link: str) -> EmailMessage:
    """The whole mail to ``recipients`` (all in ``To``: they are users of the same account).

    ``Message-ID`` is derived from the alert's id, so if a mail is sent twice (the server took
    it but the answer was lost) mail clients can tell it is the same one.
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject(alert)
    msg["Date"] = format_datetime(alert.created_at)
    domain = sender.rpartition("@")[2].strip("> ") or "callhook.invalid"
    msg["Message-ID"] = f"<{alert.id}@{domain}>"
    msg["X-Callhook-Alert"] = str(alert.kind)
    msg.set_content(body(alert, link=link))
    return msg
