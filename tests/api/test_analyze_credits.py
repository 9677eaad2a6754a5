"""Credits on the real POST /api/analyze route, tiny model in process, both databases."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.settings import AccountSettings
from serve_app.accounts.users import create_user
from serve_app.config import Settings
from serve_app.http.app import create_app
from serve_app.pipeline.describe import DescribePipeline
from tests.support.databases import SESSION_KEY
from tests.support.media_files import make_image

ACCOUNT_SETTINGS = AccountSettings(
    argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1, rate_limit_burst=10_000
)


@pytest.fixture
def accounts(database) -> AccountsContext:
    return AccountsContext.build(database, ACCOUNT_SETTINGS, SESSION_KEY)


@pytest.fixture
def app_client(tiny_engine, accounts: AccountsContext, tmp_path: Path):
    profile, engine = tiny_engine
    settings = Settings(data_dir=tmp_path / "data")
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine)}, profile.name, settings.media
    )
    app = create_app(pipeline, settings, accounts)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120)


@pytest.fixture(scope="module")
def jpeg(tmp_path_factory) -> bytes:
    return make_image(tmp_path_factory.mktemp("img") / "a.jpg", "jpeg", 56, 56).read_bytes()


def bearer(
    accounts: AccountsContext, username: str, credits: int, admin: bool = False
) -> dict[str, str]:
    user = create_user(
        accounts.database,
        accounts.passwords,
        username,
        "password-" + username,
        is_admin=admin,
        credits=credits,
    )
    return {
        "Authorization": f"Bearer {accounts.tokens.create(user.id, 't').token}",
        "X-Test-User-Id": str(user.id),
    }


async def test_fifty_concurrent_analyses_with_credits_for_three(app_client, accounts, jpeg):
    headers = bearer(accounts, "alice", credits=30)

    async def one() -> httpx.Response:
        return await app_client.post(
            "/api/analyze", files={"file": ("a.jpg", jpeg)}, headers=headers
        )

    responses = await asyncio.gather(*(one() for _ in range(50)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 3, 402: 47}
    ok = [r.json() for r in responses if r.status_code == 200]
    assert all(body["tokens_used"] == 10 for body in ok)
    assert sorted(body["remaining_tokens"] for body in ok) == [0, 10, 20]
    user_id = int(headers["X-Test-User-Id"])
    assert accounts.credits.balance(user_id) == 0
    assert accounts.credits.ledger_sum(user_id) == 0


async def test_repeated_idempotency_key_charges_once(app_client, accounts, jpeg):
    headers = bearer(accounts, "bob", credits=100) | {"Idempotency-Key": "k-1"}
    first = await app_client.post("/api/analyze", files={"file": ("a.jpg", jpeg)}, headers=headers)
    assert first.status_code == 200, first.text
    again = await asyncio.gather(
        *(
            app_client.post("/api/analyze", files={"file": ("a.jpg", jpeg)}, headers=headers)
            for _ in range(5)
        )
    )
    assert all(r.status_code == 200 and r.json() == first.json() for r in again)
    user_id = int(headers["X-Test-User-Id"])
    assert accounts.credits.balance(user_id) == 90
    other_body = await app_client.post(
        "/api/analyze", files={"file": ("a.jpg", jpeg)}, data={"prompt": "x"}, headers=headers
    )
    assert other_body.status_code == 422


async def test_admin_pays_nothing_and_broke_user_gets_402(app_client, accounts, jpeg):
    admin = await app_client.post(
        "/api/analyze",
        files={"file": ("a.jpg", jpeg)},
        headers=bearer(accounts, "root", credits=0, admin=True),
    )
    assert admin.status_code == 200
    assert admin.json()["tokens_used"] == 0
    broke = await app_client.post(
        "/api/analyze", files={"file": ("a.jpg", jpeg)}, headers=bearer(accounts, "eve", 0)
    )
    assert broke.status_code == 402
    assert "credits" in broke.json()["detail"]


async def test_failed_analysis_releases_the_reservation(app_client, accounts, tmp_path):
    headers = bearer(accounts, "carol", credits=10)
    broken = make_image(tmp_path / "x.jpg", "jpeg", 200, 200).read_bytes()[:300]
    response = await app_client.post(
        "/api/analyze", files={"file": ("x.jpg", broken)}, headers=headers
    )
    assert response.status_code == 422
    user_id = int(headers["X-Test-User-Id"])
    assert accounts.credits.balance(user_id) == 10
    assert accounts.credits.ledger_sum(user_id) == 10


async def test_missing_and_bad_tokens_are_401(app_client, jpeg):
    for headers in ({}, {"Authorization": "Bearer sa_nope"}, {"Authorization": "Basic x"}):
        response = await app_client.post(
            "/api/analyze", files={"file": ("a.jpg", jpeg)}, headers=headers
        )
        assert response.status_code == 401
