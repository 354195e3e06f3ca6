"""Sign-in throttling counts and checks atomically (issue 11, class 7): however many wrong
passwords arrive at once, at most the limit of passwords is checked, on SQLite and PostgreSQL.

Forty sign-ins are sent concurrently through the app (each runs its database work and its
Argon2 check on its own thread); every password check is counted by a spy around the real one.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from callhook.api.app import create_app
from callhook.dashboard.signin import ADDRESS_LIMIT, EMAIL_LIMIT
from callhook.platform import Platform
from callhook.store import users as user_store
from tests.factories import make_account

PARALLEL = 40
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class CountingChecks:
    """Counts calls of the real ``check_password`` (thread-safe)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._real = user_store.check_password

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
        return self._real(*args, **kwargs)


async def _parallel_sign_ins(platform: Platform, emails: list[str], password: str) -> list[int]:
    app = create_app(platform.settings, platform=platform)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        form = await client.get("/dashboard/signin")
        match = _CSRF.search(form.text)
        assert match is not None
        csrf = match.group(1)

        async def one(email: str) -> int:
            response = await client.post(
                "/dashboard/signin",
                data={"email": email, "password": password, "csrf_token": csrf},
            )
            return response.status_code

        return list(await asyncio.gather(*(one(e) for e in emails)))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> CountingChecks:
    spy = CountingChecks()
    monkeypatch.setattr(user_store, "check_password", spy)
    return spy


def _user(platform: Platform, email: str) -> None:
    account = make_account(platform)
    with platform.db.write() as conn:
        user_store.create(
            conn,
            account_id=account.id,
            email=email,
            password=PASSWORD,
            now=platform.clock.now(),
            rng=platform.rng,
        )


def test_parallel_wrong_passwords_for_one_email_check_at_most_the_limit(
    platform_factory: Callable[..., Platform], counted: CountingChecks
) -> None:
    platform = platform_factory()
    _user(platform, "ana@example.com")
    statuses = asyncio.run(
        _parallel_sign_ins(platform, ["ana@example.com"] * PARALLEL, "wrong guess")
    )
    assert statuses.count(401) == EMAIL_LIMIT
    assert statuses.count(429) == PARALLEL - EMAIL_LIMIT
    assert counted.calls == EMAIL_LIMIT
    # Throttled now, even with the right password (checked no more).
    again = asyncio.run(_parallel_sign_ins(platform, ["ana@example.com"], PASSWORD))
    assert again == [429]
    assert counted.calls == EMAIL_LIMIT


def test_parallel_password_spraying_from_one_address_checks_at_most_its_limit(
    platform_factory: Callable[..., Platform], counted: CountingChecks
) -> None:
    platform = platform_factory()
    emails = [f"spray{i}@example.com" for i in range(PARALLEL)]
    statuses = asyncio.run(_parallel_sign_ins(platform, emails, "wrong guess"))
    assert statuses.count(401) == ADDRESS_LIMIT
    assert statuses.count(429) == PARALLEL - ADDRESS_LIMIT
    assert counted.calls == ADDRESS_LIMIT


def test_parallel_right_passwords_all_sign_in_and_leave_no_failure_behind(
    platform_factory: Callable[..., Platform], counted: CountingChecks
) -> None:
    platform = platform_factory()
    _user(platform, "ana@example.com")
    statuses = asyncio.run(
        _parallel_sign_ins(platform, ["ana@example.com"] * EMAIL_LIMIT * 2, PASSWORD)
    )
    # Each attempt holds a reservation only until its password is found right, so at most
    # the limit are under way at once; none is refused for good.
    assert statuses.count(303) >= EMAIL_LIMIT
    assert set(statuses) <= {303, 429}
    wrong = asyncio.run(_parallel_sign_ins(platform, ["ana@example.com"], "wrong guess"))
    assert wrong == [401]  # the successes left no failures counted against the email
