"""GET/POST/DELETE /api/api_tokens: own tokens only, secrets shown once."""

from __future__ import annotations

import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import create_user
from tests.support.accounts_app import build_app, client_for
from tests.support.databases import FAST_SETTINGS, SESSION_KEY


@pytest.fixture
def accounts(database):
    settings = FAST_SETTINGS.model_copy(update={"rate_limit_burst": 1000})
    return AccountsContext.build(database, settings, SESSION_KEY)


@pytest.fixture
def tokens(accounts):
    """One bootstrap token each for alice and bob."""
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


async def test_create_list_use_and_revoke(api, tokens):
    created = await api.post(
        "/api/api_tokens", json={"name": "laptop"}, headers=auth(tokens["alice"])
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "name", "token", "prefix", "created_at"}
    assert body["name"] == "laptop" and body["token"].startswith(body["prefix"])
    assert body["prefix"].startswith("sa_")

    listed = await api.get("/api/api_tokens", headers=auth(body["token"]))
    assert listed.status_code == 200
    entries = listed.json()["tokens"]
    assert [e["name"] for e in entries] == ["bootstrap", "laptop"]
    assert all(set(e) == {"id", "name", "prefix", "created_at", "last_used"} for e in entries)
    assert body["token"] not in listed.text and tokens["alice"] not in listed.text
    laptop = entries[1]
    assert laptop["last_used"] is not None  # it authenticated the listing

    revoked = await api.delete(f"/api/api_tokens/{body['id']}", headers=auth(tokens["alice"]))
    assert revoked.status_code == 204
    assert (await api.get("/api/api_tokens", headers=auth(body["token"]))).status_code == 401
    again = await api.delete(f"/api/api_tokens/{body['id']}", headers=auth(tokens["alice"]))
    assert again.status_code == 404


async def test_other_users_tokens_are_invisible_and_404(api, tokens):
    mine = (await api.get("/api/api_tokens", headers=auth(tokens["alice"]))).json()["tokens"]
    theirs = (await api.get("/api/api_tokens", headers=auth(tokens["bob"]))).json()["tokens"]
    assert {t["id"] for t in mine}.isdisjoint({t["id"] for t in theirs})
    response = await api.delete(f"/api/api_tokens/{mine[0]['id']}", headers=auth(tokens["bob"]))
    assert response.status_code == 404
    assert (await api.get("/api/api_tokens", headers=auth(tokens["alice"]))).status_code == 200


async def test_ids_are_integers_as_documented(api, tokens):
    created = (
        await api.post("/api/api_tokens", json={"name": "laptop"}, headers=auth(tokens["alice"]))
    ).json()
    listed = (await api.get("/api/api_tokens", headers=auth(tokens["alice"]))).json()["tokens"]
    assert type(created["id"]) is int and [type(t["id"]) for t in listed] == [int, int]
    assert listed[1]["id"] == created["id"] > listed[0]["id"]
    revoked = await api.delete(f"/api/api_tokens/{created['id']}", headers=auth(tokens["alice"]))
    assert revoked.status_code == 204


@pytest.mark.parametrize(
    "token_id", ["abc", "1.0", "-1", "0", "01", "%201", "1e3", "f" * 32, "9" * 40, "2147483648"]
)
async def test_ids_that_name_no_token_are_404(api, tokens, token_id):
    response = await api.delete(f"/api/api_tokens/{token_id}", headers=auth(tokens["alice"]))
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "no such API token"}
    listed = (await api.get("/api/api_tokens", headers=auth(tokens["alice"]))).json()["tokens"]
    assert len(listed) == 1


async def test_the_openapi_schema_says_ids_are_integers(api):
    schema = (await api.get("/openapi.json")).json()
    info = schema["components"]["schemas"]["TokenInfo"]["properties"]["id"]
    assert info["type"] == "integer"
    delete = schema["paths"]["/api/api_tokens/{token_id}"]["delete"]
    (param,) = [p for p in delete["parameters"] if p["name"] == "token_id"]
    assert param["schema"]["type"] == "integer"


async def test_bodies_cannot_carry_extra_fields(api, tokens):
    for body in (
        {"name": "x", "is_admin": True},
        {"name": "x", "balance": 10**9},
        {},
        {"name": ""},
    ):
        response = await api.post("/api/api_tokens", json=body, headers=auth(tokens["alice"]))
        assert response.status_code == 400, body
    me = (await api.get("/api/me", headers=auth(tokens["alice"]))).json()
    assert me["is_admin"] is False and me["balance"] == 0


async def test_every_endpoint_requires_authentication(api):
    assert (await api.get("/api/api_tokens")).status_code == 401
    assert (await api.post("/api/api_tokens", json={"name": "x"})).status_code == 401
    assert (await api.delete("/api/api_tokens/abc")).status_code == 401
    assert (await api.get("/api/me")).status_code == 401
    assert (await api.get("/api/stats")).status_code == 401
