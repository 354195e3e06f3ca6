"""A single-file Django webhook receiver that follows every practice of specs 000 and 004.

    pip install "./packages/callhook-receiver[django]"      # from a clone of the repository
    CALLHOOK_WEBHOOK_SECRET=whsec_... python examples/django_receiver.py --port 8000

In a real project the view goes in ``views.py`` and the secret in ``settings.py``. The view is
CSRF-exempt (the signature authenticates the sender), verifies before it runs (401 otherwise),
ignores duplicates (``event:pbx_id`` in a SQLite file), answers 200 at once and processes on a
worker thread.
"""

from __future__ import annotations

import argparse
import secrets

import django
from django.conf import settings
from django.core.management import execute_from_command_line
from django.http import HttpRequest, HttpResponse
from django.urls import path
from example_handlers import configure_logging, dedup_from_env, process_event, secrets_from_env

from callhook.receiver import Event
from callhook.receiver.django import accept, webhook_view

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    SECRET_KEY=secrets.token_urlsafe(32),
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    LOGGING_CONFIG=None,
)
django.setup()


@webhook_view(secrets_from_env(), dedup=dedup_from_env())
def receive(request: HttpRequest, event: Event) -> HttpResponse:
    return accept(process_event, event)


urlpatterns = [path("webhook", receive)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    configure_logging()
    execute_from_command_line(["django", "runserver", "--noreload", f"{args.host}:{args.port}"])


if __name__ == "__main__":
    main()
