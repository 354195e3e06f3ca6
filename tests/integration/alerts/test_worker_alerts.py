"""The alert sender runs beside delivery in every worker, and a hung SMTP server slows
neither deliveries nor operational webhooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callhook.alerts import AlertKind
from callhook.signing import generate_secret
from callhook.store import alerts as outbox
from tests.factories import make_account, make_platform, make_user, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for
from tests.support.smtp import silent_server
from tests.support.worker import running_worker


async def test_deliveries_and_webhook_alerts_flow_while_the_smtp_server_hangs(
    tmp_path: Path, tls: Tls
) -> None:
    secret = generate_secret()
    endpoint = await Receiver(tls.server_context()).start()
    ops = await Receiver(tls.server_context()).start()
    try:
        async with silent_server() as smtp_port:
            platform = make_platform(
                tmp_path,
                ca_bundle=tls.ca_path,
                operational_webhook_url=ops.url,
                operational_webhook_secret=secret,
                smtp_host="127.0.0.1",
                smtp_port=smtp_port,
                smtp_starttls=False,
                smtp_from="alerts@callhook.example",
                # Longer than the test: the mail is still waiting for a greeting at the end.
                smtp_timeout=600,
                alert_poll_interval=0.05,
            )
            account = make_account(platform, url=endpoint.url)
            make_user(platform, account.id, "ana@pbx.example.com")
            with platform.db.write() as conn:
                outbox.record_alert(
                    conn,
                    AlertKind.ENDPOINT_RECOVERED,
                    account.id,
                    "ep_1",
                    {"transition_at": "2026-01-15T10:30:00Z"},
                    platform.clock.now(),
                )
            async with running_worker(platform):
                for seed in range(20):
                    publish_sample(platform, account.id, seed=seed)
                await wait_for(lambda: len(endpoint.received) == 20 and len(ops.received) == 1)

                def channels() -> dict[str, Any]:
                    with platform.db.read() as conn:
                        return {r["channel"]: r for r in outbox.for_endpoint(conn, "ep_1")}

                # The webhook is marked sent after its receiver answered, not when it received.
                await wait_for(lambda: channels()["webhook"]["status"] == "sent")
                rows = channels()
                # The mail is being sent (claimed, under its lease) and not sent.
                assert rows["email"]["status"] == "pending"
                assert rows["email"]["claim_id"] is not None
                assert rows["webhook"]["status"] == "sent"
    finally:
        await endpoint.stop()
        await ops.stop()
