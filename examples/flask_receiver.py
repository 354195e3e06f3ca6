"""A Flask webhook receiver that follows every practice of specs 000 and 004.

    pip install "./packages/callhook-receiver[flask]"       # from a clone of the repository
    CALLHOOK_WEBHOOK_SECRET=whsec_... python examples/flask_receiver.py --port 8000

Verifies the signature before the view runs (401 otherwise), ignores duplicates
(``event:pbx_id`` in a SQLite file), answers 200 at once and processes on a worker thread.
"""

from __future__ import annotations

import argparse

from example_handlers import configure_logging, dedup_from_env, process_event, secrets_from_env
from flask import Flask, Response

from callhook.receiver import Event
from callhook.receiver.flask import accept, webhook


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhook")
    @webhook(secrets_from_env(), dedup=dedup_from_env())
    def receive(event: Event) -> Response:
        return accept(process_event, event)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    configure_logging()
    create_app().run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
