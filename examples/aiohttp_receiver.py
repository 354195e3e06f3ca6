"""An aiohttp webhook receiver that follows every practice of specs 000 and 004.

    pip install "./packages/callhook-receiver[aiohttp]"     # from a clone of the repository
    CALLHOOK_WEBHOOK_SECRET=whsec_... python examples/aiohttp_receiver.py --port 8000

Verifies the signature first (401 otherwise), ignores duplicates (``event:pbx_id`` in a SQLite
file), answers 200 at once and processes in a background task.
"""

from __future__ import annotations

import argparse

from aiohttp import web
from example_handlers import (
    configure_logging,
    dedup_from_env,
    process_event_async,
    secrets_from_env,
)

from callhook.receiver.aiohttp import webhook_handler


def create_app() -> web.Application:
    app = web.Application()
    handler = webhook_handler(secrets_from_env(), process_event_async, dedup=dedup_from_env())
    app.router.add_post("/webhook", handler)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    configure_logging()
    web.run_app(create_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
