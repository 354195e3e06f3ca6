"""A user of account A can neither see nor act on account B's deliveries and tokens."""

from __future__ import annotations

from pathlib import Path

from callhook.store import deliveries as delivery_store
from callhook.store import tokens as token_store
from callhook.store.tables import deliveries
from tests.factories import publish_sample
from tests.integration.dashboard.site import make_site, make_user, page_token, sign_in


def test_tenant_isolation(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    make_user(site, email="ana@example.com")
    b_account = make_user(site, email="bo@example.com")
    theirs = publish_sample(site.platform, b_account, "voicemail", seed=3)
    assert theirs.delivery_id is not None
    with site.platform.db.write() as conn:
        conn.execute(deliveries.update().values(status="failed", next_attempt_at=None))
        b_token, _ = token_store.create(
            conn,
            account_id=b_account,
            scopes=["events.write"],
            now=site.clock.now(),
            rng=site.platform.rng,
        )
    sign_in(site.client, "ana@example.com")
    csrf = page_token(site.client)

    listing = site.client.get("/dashboard/deliveries")
    assert listing.status_code == 200
    assert theirs.delivery_id not in listing.text
    assert theirs.pbx_id not in listing.text
    assert theirs.pbx_id not in site.client.get("/dashboard").text

    for path in (
        f"/dashboard/deliveries/{theirs.delivery_id}",
        f"/dashboard/test/{theirs.delivery_id}",
    ):
        response = site.client.get(path)
        assert response.status_code == 404
        assert theirs.pbx_id not in response.text

    redeliver = site.client.post(
        f"/dashboard/deliveries/{theirs.delivery_id}/redeliver", data={"csrf_token": csrf}
    )
    assert redeliver.status_code == 404
    bulk = site.client.post(
        "/dashboard/deliveries/redeliver-failed",
        data={"csrf_token": csrf, "since": "2000-01-01T00:00"},
        follow_redirects=False,
    )
    assert bulk.headers["location"] == "/dashboard/deliveries?requeued=0"
    with site.platform.db.read() as conn:
        assert delivery_store.get(conn, theirs.delivery_id).status == "failed"

    site.client.post(f"/dashboard/tokens/{b_token.id}/revoke", data={"csrf_token": csrf})
    with site.platform.db.read() as conn:
        [still] = token_store.list_for(conn, b_account)
    assert still.revoked_at is None
    assert b_token.prefix not in site.client.get("/dashboard/tokens").text
