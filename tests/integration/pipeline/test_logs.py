"""One JSON log line per attempt and per rejected request, never with secrets or tokens."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from callhook import logs
from callhook.api.app import create_app
from tests.factories import make_account, make_platform, make_token, publish_sample
from tests.support.receiver import Receiver, Tls
from tests.support.worker import work_until


async def test_attempts_and_rejections_are_logged_without_secrets(tmp_path: Path, tls: Tls) -> None:
    stream = io.StringIO()
    logs.configure("INFO", json=True)
    handler = logging.getLogger("callhook").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)

    receiver = await Receiver(tls.server_context()).start()
    try:
        platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
        account = make_account(platform, url=receiver.url)
        token = make_token(platform, account.id, ["events.write"])
        published = publish_sample(platform, account.id)
        await work_until(platform, lambda: len(receiver.received) == 1)
        with TestClient(create_app(platform.settings, platform=platform)) as client:
            rejected = client.post(
                "/internal/v1/events", content=b"{", headers={"Authorization": f"Bearer {token}"}
            )
            assert rejected.status_code == 400
    finally:
        await receiver.stop()
        logging.getLogger("callhook").handlers.clear()

    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    attempt = next(line for line in lines if line["msg"] == "attempt")
    assert attempt["event_id"] == published.id
    assert attempt["result"] == "delivered"
    assert attempt["status_code"] == 200
    rejection = next(line for line in lines if line["msg"] == "request rejected")
    assert rejection["status"] == 400
    assert rejection["path"] == "/internal/v1/events"
    text = stream.getvalue()
    assert account.secret not in text
    assert account.secret.removeprefix("whsec_") not in text
    assert token not in text
