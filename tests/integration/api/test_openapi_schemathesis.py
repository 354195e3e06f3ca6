"""schemathesis against /api/v2/openapi.json, in-process: positive and negative data, with and
without credentials, over API v2 and ingest. No 5xx, every status documented, every body
matching its schema, and (schemathesis's unsupported-method check) a 405 with a right Allow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from callhook.api.app import create_app
from callhook.api.ratelimit import RateLimits, clock_seconds
from callhook.core.clock import FakeClock
from callhook.platform import Platform
from tests.factories import make_account, make_platform, make_token, publish_sample
from tests.integration.api.helpers import BOTH

OPERATIONS = [
    ("GET", "/api/v2/webhooks/available"),
    ("GET", "/api/v2/webhooks"),
    ("POST", "/api/v2/webhooks/{event}"),
    ("DELETE", "/api/v2/webhooks/{event}"),
    ("GET", "/api/v2/webhooks/deliveries"),
    ("GET", "/api/v2/webhooks/deliveries/{delivery_id}"),
    ("POST", "/api/v2/webhooks/deliveries/{delivery_id}/redeliver"),
    ("POST", "/api/v2/webhooks/deliveries/redeliver"),
    ("POST", "/api/v2/webhooks/test"),
    ("GET", "/api/v2/webhooks/events/{pbx_id}"),
    ("GET", "/api/v2/endpoints"),
    ("POST", "/api/v2/endpoints"),
    ("GET", "/api/v2/endpoints/{endpoint_id}"),
    ("PATCH", "/api/v2/endpoints/{endpoint_id}"),
    ("DELETE", "/api/v2/endpoints/{endpoint_id}"),
    ("GET", "/api/v2/endpoints/{endpoint_id}/secret"),
    ("POST", "/api/v2/endpoints/{endpoint_id}/secret/rotate"),
    ("POST", "/api/v2/endpoints/{endpoint_id}/test"),
]
INGEST = ("POST", "/internal/v1/events")
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
#: Per operation and mode; small enough that the whole file runs in well under a minute.
MAX_EXAMPLES = 25


@dataclass
class Target:
    schema: Any
    token: str


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    clock = FakeClock()
    platform: Platform = make_platform(
        tmp_path_factory.mktemp("schemathesis"),
        clock=clock,
        seed=5,
        rate_limit_per_token=1e6,
        rate_limit_burst=1_000_000,
    )
    account = make_account(platform, url="https://example.com/webhooks/sipsim")
    for seed in range(3):
        publish_sample(platform, account.id, seed=seed)
    token = make_token(platform, account.id, [*BOTH, "events.write", "endpoints.write"])
    app = create_app(platform.settings, platform=platform)
    # Missing-auth probes must meet 401, not the failed-auth throttle (tested elsewhere).
    app.state.rate_limits = RateLimits(
        per_token_rate=1e6,
        per_token_burst=1_000_000,
        now=clock_seconds(clock),
        auth_failure_rate=1e6,
        auth_failure_burst=1_000_000,
        bad_token_rate=1e6,
        bad_token_burst=1_000_000,
    )
    schema = schemathesis.openapi.from_asgi("/api/v2/openapi.json", app)
    # The token is added to every call; missing credentials are probed by the ignored_auth check.
    schema.config.generation.update(with_security_parameters=False)
    yield Target(schema, token)
    platform.db.dispose()


def test_every_v2_operation_and_ingest_is_covered(target: Target) -> None:
    documented = {
        (op.ok().method.upper(), op.ok().path) for op in target.schema.get_all_operations()
    }
    assert documented == {*OPERATIONS, INGEST}


#: Operations without parameters or body have no negative data (missing credentials are
#: probed by the ignored_auth check in the positive runs).
NO_INPUT = {
    ("GET", "/api/v2/webhooks/available"),
    ("GET", "/api/v2/webhooks"),
    ("POST", "/api/v2/webhooks/test"),
    ("GET", "/api/v2/endpoints"),
}
RUNS = [
    (method, path, mode)
    for method, path in [*OPERATIONS, INGEST]
    for mode in MODES
    if mode is schemathesis.GenerationMode.POSITIVE or (method, path) not in NO_INPUT
]
#: A window whose ``until`` is not after ``since`` is schema-valid yet refused with 422 (a
#: JSON Schema cannot relate two fields); every other check still applies to that operation.
#: Ingest's body schema says "an event name" and "an object" where the catalog's models (one
#: per event, with cross-field rules) decide: schema-valid bodies are mostly refused with a
#: documented 400 or 422, never accepted blindly.
#: An endpoint's URL is vetted and resolved (the schema cannot say "a public HTTPS host"), and a
#: URL may be another endpoint's or past the account's limit: schema-valid bodies are mostly
#: refused with a documented 400 or 409.
RELAXED = {
    ("POST", "/api/v2/webhooks/deliveries/redeliver"): [positive_data_acceptance],
    ("POST", "/api/v2/endpoints"): [positive_data_acceptance],
    ("PATCH", "/api/v2/endpoints/{endpoint_id}"): [positive_data_acceptance],
    INGEST: [positive_data_acceptance],
}


@pytest.mark.parametrize(
    ("method", "path", "mode"), RUNS, ids=[f"{m} {p} {g.value}" for m, p, g in RUNS]
)
def test_operation_conforms_to_the_openapi_document(
    target: Target, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    operation = target.schema[path][method]
    headers = {"Authorization": f"Bearer {target.token}"}
    excluded = RELAXED.get((method, path), [])

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=headers, excluded_checks=excluded)
        assert response.status_code < 500

    run()


def test_openapi_document_lists_every_route_with_security(tmp_path: Path) -> None:
    platform = make_platform(tmp_path)
    with TestClient(create_app(platform.settings, platform=platform)) as client:
        doc = client.get("/api/v2/openapi.json").json()
        docs_page = client.get("/api/v2/docs")
    paths = {p: sorted(ops) for p, ops in doc["paths"].items() if p.startswith("/api/v2/")}
    assert paths == {
        "/api/v2/webhooks": ["get"],
        "/api/v2/webhooks/available": ["get"],
        "/api/v2/webhooks/{event}": ["delete", "post"],
        "/api/v2/webhooks/deliveries": ["get"],
        "/api/v2/webhooks/deliveries/{delivery_id}": ["get"],
        "/api/v2/webhooks/deliveries/{delivery_id}/redeliver": ["post"],
        "/api/v2/webhooks/deliveries/redeliver": ["post"],
        "/api/v2/webhooks/test": ["post"],
        "/api/v2/webhooks/events/{pbx_id}": ["get"],
        "/api/v2/endpoints": ["get", "post"],
        "/api/v2/endpoints/{endpoint_id}": ["delete", "get", "patch"],
        "/api/v2/endpoints/{endpoint_id}/secret": ["get"],
        "/api/v2/endpoints/{endpoint_id}/secret/rotate": ["post"],
        "/api/v2/endpoints/{endpoint_id}/test": ["post"],
    }
    for path, ops in doc["paths"].items():
        if path.startswith("/api/v2/"):
            for op in ops.values():
                assert op["security"] == [{"BearerToken": []}]
                assert "422" not in op["responses"] or "HTTPValidationError" not in str(
                    op["responses"]["422"]
                )
    assert docs_page.status_code == 200
    assert "swagger" in docs_page.text.lower()
