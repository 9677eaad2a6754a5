"""Login, logout, CSRF, bearer tokens, rate limits and charging through HTTP."""

from __future__ import annotations

import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import create_user
from tests.support.accounts_app import build_app, client_for
from tests.support.databases import FAST_SETTINGS, SESSION_KEY

PASSWORD = "password123"


@pytest.fixture
def accounts(database):
    settings = FAST_SETTINGS.model_copy(update={"rate_limit_burst": 1000, "analysis_cost": 10})
    return AccountsContext.build(database, settings, SESSION_KEY)


@pytest.fixture
def alice(accounts):
    return create_user(accounts.database, accounts.passwords, "alice", PASSWORD, credits=30)


@pytest.fixture
async def api(accounts, alice):
    async with client_for(build_app(accounts)) as client:
        yield client


async def log_in(api, username="alice", password=PASSWORD):
    response = await api.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_json_login_sets_hardened_cookies(api):
    response = await api.post("/login", json={"username": "ALICE", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "alice" and body["is_admin"] is False
    cookies = {h.split("=")[0]: h.lower() for h in response.headers.get_list("set-cookie")}
    session = cookies["serve_app_session"]
    assert "httponly" in session and "samesite=lax" in session and "path=/" in session
    assert "secure" not in session
    csrf = cookies["csrf_token"]
    assert "httponly" not in csrf and body["csrf_token"].lower() in csrf
    me = await api.get("/api/me")
    assert me.status_code == 200
    assert me.json()["username"] == "alice" and me.json()["balance"] == 30


async def test_form_login_redirects_to_the_page(api):
    response = await api.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/ui/analyze"
    assert (await api.get("/api/me")).status_code == 200


async def test_secure_cookies_when_configured(database, alice):
    settings = FAST_SETTINGS.model_copy(update={"cookie_secure": True})
    async with client_for(build_app(AccountsContext.build(database, settings, SESSION_KEY))) as c:
        response = await c.post("/login", json={"username": "alice", "password": PASSWORD})
    assert all("secure" in h.lower() for h in response.headers.get_list("set-cookie"))


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong-password"), ("nobody", PASSWORD)]
)
async def test_bad_credentials_are_401_without_telling_which(api, username, password):
    response = await api.post("/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid username or password"}
    assert "set-cookie" not in response.headers


async def test_malformed_login_bodies_are_400(api):
    assert (await api.post("/login", json={"username": "alice"})).status_code == 400
    assert (await api.post("/login", content=b"{nope")).status_code == 400
    assert (await api.post("/login", json=["alice", PASSWORD])).status_code == 400


async def test_cross_site_login_is_refused(api):
    response = await api.post(
        "/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    same = await api.post(
        "/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": "http://test"},
    )
    assert same.status_code == 200


async def test_login_attempts_are_rate_limited(api, accounts):
    for _ in range(accounts.settings.login_burst):
        response = await api.post("/login", json={"username": "alice", "password": "wrong-pass"})
        assert response.status_code == 401
    response = await api.post("/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "too many login attempts" in response.json()["detail"]


async def test_cookie_auth_needs_the_csrf_header_for_state_changes(api):
    csrf = await log_in(api)
    missing = await api.post("/api/api_tokens", json={"name": "t"})
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    wrong = await api.post("/api/api_tokens", json={"name": "t"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    ok = await api.post("/api/api_tokens", json={"name": "t"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert (await api.get("/api/api_tokens")).status_code == 200  # safe methods need none


async def test_bearer_requests_are_exempt_from_csrf(api, accounts, alice):
    token = accounts.tokens.create(alice.id, "ci").token
    api.cookies.clear()
    response = await api.post("/api/api_tokens", json={"name": "t2"}, headers=bearer(token))
    assert response.status_code == 201


async def test_logout_needs_csrf_and_ends_the_session_everywhere(api):
    csrf = await log_in(api)
    stolen_cookie = api.cookies.get("serve_app_session")
    assert (await api.post("/logout")).status_code == 403
    response = await api.post("/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert "serve_app_session=" in response.headers.get("set-cookie", "")
    api.cookies.set("serve_app_session", stolen_cookie)
    assert (await api.get("/api/me")).status_code == 401
    api.cookies.clear()
    assert (await api.post("/logout")).status_code == 204  # no session: just clears


async def test_tampered_cookies_are_401(api):
    await log_in(api)
    cookie = api.cookies.get("serve_app_session")
    api.cookies.set("serve_app_session", cookie[:-2] + "xx")
    response = await api.get("/api/me")
    assert response.status_code == 401 and "log in again" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer sa_" + "A" * 43},
        {"Authorization": ("Bearer sa_" + "é" * 43).encode()},
    ],
    ids=["missing", "empty", "basic", "malformed", "unknown", "non-ascii"],
)
async def test_missing_malformed_and_unknown_tokens_are_401(api, accounts, alice, headers):
    created = accounts.tokens.create(alice.id, "ci")
    response = await api.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"detail"}
    assert accounts.tokens.list_active(alice.id)[0].last_used is None
    assert created.token not in response.text


async def test_revoked_tokens_are_401(api, accounts, alice):
    created = accounts.tokens.create(alice.id, "ci")
    assert (await api.get("/api/me", headers=bearer(created.token))).status_code == 200
    accounts.tokens.revoke(alice.id, created.info.id)
    response = await api.get("/api/me", headers=bearer(created.token))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


async def test_api_key_query_only_where_a_route_opts_in(api, accounts, alice):
    token = accounts.tokens.create(alice.id, "ci").token
    assert (await api.get("/api/me", params={"api_key": token})).status_code == 401
    response = await api.get("/api/jobs", params={"api_key": token})
    assert response.status_code == 200 and response.json() == {"user": "alice"}
    assert (await api.get("/api/jobs", params={"api_key": "sa_nope"})).status_code == 401
    assert (await api.get("/api/jobs", headers=bearer(token))).status_code == 200


async def test_request_budget_is_rate_limited(database, alice):
    settings = FAST_SETTINGS.model_copy(update={"rate_limit_burst": 3, "rate_limit_per_s": 0.1})
    accounts = AccountsContext.build(database, settings, SESSION_KEY)
    token = accounts.tokens.create(alice.id, "ci").token
    async with client_for(build_app(accounts)) as api:
        for _ in range(3):
            assert (await api.get("/api/me", headers=bearer(token))).status_code == 200
        response = await api.get("/api/me", headers=bearer(token))
    assert response.status_code == 429 and response.headers["retry-after"] == "10"


async def test_analysis_costs_credits_and_admins_are_free(api, accounts, alice):
    token = accounts.tokens.create(alice.id, "ci").token
    response = await api.post("/api/paid", content=b"hello", headers=bearer(token))
    assert response.json() == {"result": "hello", "tokens_used": 10, "remaining_tokens": 20}
    admin = create_user(accounts.database, accounts.passwords, "root", PASSWORD, is_admin=True)
    admin_token = accounts.tokens.create(admin.id, "ci").token
    response = await api.post("/api/paid", content=b"x", headers=bearer(admin_token))
    assert response.json()["tokens_used"] == 0


async def test_insufficient_credits_is_402_and_failures_are_refunded(api, accounts, alice):
    token = accounts.tokens.create(alice.id, "ci").token
    failed = await api.post("/api/paid", content=b"fail", headers=bearer(token))
    assert failed.status_code == 500
    assert accounts.credits.balance(alice.id) == 30
    for _ in range(3):
        assert (
            await api.post("/api/paid", content=b"ok", headers=bearer(token))
        ).status_code == 200
    response = await api.post("/api/paid", content=b"ok", headers=bearer(token))
    assert response.status_code == 402
    assert "costs 10 credits and your balance is 0" in response.json()["detail"]
    assert accounts.credits.ledger_sum(alice.id) == 0


async def test_idempotency_key_replays_and_charges_once(api, accounts, alice):
    headers = {**bearer(accounts.tokens.create(alice.id, "ci").token), "Idempotency-Key": "k1"}
    first = await api.post("/api/paid", content=b"same", headers=headers)
    again = await api.post("/api/paid", content=b"same", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert accounts.credits.balance(alice.id) == 20
    other = await api.post("/api/paid", content=b"different", headers=headers)
    assert other.status_code == 422
    bad = await api.post("/api/paid", content=b"x", headers={**headers, "Idempotency-Key": " "})
    assert bad.status_code == 400
