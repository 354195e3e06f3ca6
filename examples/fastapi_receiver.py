"""A FastAPI webhook receiver that follows every practice of specs 000 and 004.

    pip install "./packages/callhook-receiver[fastapi]" uvicorn   # from a clone of the repository
    CALLHOOK_WEBHOOK_SECRET=whsec_... python examples/fastapi_receiver.py --port 8000

Verifies the signature before the endpoint runs (401 otherwise), ignores duplicates
(``event:pbx_id`` in a SQLite file), answers 200 at once and processes after the response.
"""

from __future__ import annotations

import argparse

import uvicorn
from example_handlers import configure_logging, dedup_from_env, process_event, secrets_from_env
from fastapi import Depends, FastAPI
from starlette.responses import Response

from callhook.receiver import Event
from callhook.receiver.fastapi import WebhookVerifier, accept, install


def create_app() -> FastAPI:
    app = FastAPI()
    install(app)
    verified = WebhookVerifier(secrets_from_env(), dedup=dedup_from_env())

    @app.post("/webhook")
    async def webhook(event: Event = Depends(verified)) -> Response:
        return accept(process_event, event)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    configure_logging()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
