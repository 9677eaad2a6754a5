"""/api/admin/*: administrators only; bodies cannot grant roles."""

from __future__ import annotations

import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import create_user
from tests.support.accounts_app import build_app, client_for
from tests.support.databases import FAST_SETTINGS, SESSION_KEY


@pytest.fixture
def accounts(database):
    return AccountsContext.build(database, FAST_SETTINGS, SESSION_KEY)


@pytest.fixture
def tokens(accounts):
    made = {}
    for name in ("alice", "bob"):
        user = create_user(accounts.database, accounts.passwords, name, "password123")
        made[name] = accounts.tokens.create(user.id, "bootstrap").token
    return made


@pytest.fixture
async def api(accounts):
    async with client_for(build_app(accounts)) as client:
        yield client


def auth(token):
    return {"Authorization": f"Bearer {token}"}


async def test_admin_routes_need_authentication(api):
    assert (await api.get("/api/admin/users")).status_code == 401
    assert (await api.post("/api/admin/credits", json={})).status_code == 401


async def test_admin_routes_refuse_others_with_403(api, accounts, tokens):
    assert (await api.get("/api/admin/users", headers=auth(tokens["alice"]))).status_code == 403
    grant = {"username": "alice", "amount": 50}
    response = await api.post("/api/admin/credits", json=grant, headers=auth(tokens["alice"]))
    assert response.status_code == 403
    root = create_user(accounts.database, accounts.passwords, "root", "password123", is_admin=True)
    admin = auth(accounts.tokens.create(root.id, "ops").token)
    users = (await api.get("/api/admin/users", headers=admin)).json()["users"]
    assert [u["username"] for u in users] == ["alice", "bob", "root"]
    granted = await api.post("/api/admin/credits", json=grant, headers=admin)
    assert granted.status_code == 200 and granted.json()["balance"] == 50
    sneaky = await api.post("/api/admin/credits", json={**grant, "is_admin": True}, headers=admin)
    assert sneaky.status_code == 400
    missing = await api.post("/api/admin/credits", json={**grant, "username": "zed"}, headers=admin)
    assert missing.status_code == 404
    too_much = await api.post("/api/admin/credits", json={**grant, "amount": -51}, headers=admin)
    assert too_much.status_code == 402
    assert accounts.credits.ledger_sum(granted.json()["id"]) == 50
