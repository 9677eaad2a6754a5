"""GET /api/stats: the contract's exact shape, Busy while work is in flight."""

from __future__ import annotations

import asyncio

import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import create_user
from serve_app.observability.cluster import ClusterStats, DeploymentStats, GpuStats, NodeStats
from tests.support.accounts_app import build_app, client_for
from tests.support.databases import FAST_SETTINGS, SESSION_KEY

CONTRACT_KEYS = {"status", "gpu_count", "gpus", "cpu_percent", "ram_used", "ram_total"}


class FakeProvider:
    async def cluster_stats(self) -> ClusterStats:
        gpu = GpuStats("NVIDIA H100", 10.5, 79.6, 87.0)
        return ClusterStats(
            nodes=[NodeStats("abc", "10.0.0.2", True, 35.0, 40.2, 251.5, [gpu])],
            deployments=[DeploymentStats("default", "Ingress", "HEALTHY", 2, 2, 0.0, 0.0)],
        )


@pytest.fixture
def token(accounts):
    user = create_user(accounts.database, accounts.passwords, "alice", "password123")
    return accounts.tokens.create(user.id, "ci").token


async def get_stats(accounts, token):
    async with client_for(build_app(accounts)) as api:
        return await api.get("/api/stats", headers={"Authorization": f"Bearer {token}"})


async def test_shape_is_exactly_the_contract(accounts, token):
    response = await get_stats(accounts, token)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CONTRACT_KEYS
    assert body["status"] == "Idle"
    assert body["gpu_count"] == len(body["gpus"]) == 0  # no NVIDIA driver here
    assert isinstance(body["cpu_percent"], float)
    assert isinstance(body["ram_used"], float) and isinstance(body["ram_total"], float)
    assert 0 < body["ram_used"] <= body["ram_total"]


async def test_busy_while_an_analysis_is_in_flight(accounts, token):
    with accounts.in_flight.track():
        body = (await get_stats(accounts, token)).json()
    assert body["status"] == "Busy"
    assert (await get_stats(accounts, token)).json()["status"] == "Idle"


async def test_busy_during_a_concurrent_request(accounts, token):
    async with client_for(build_app(accounts)) as api:
        entered = asyncio.Event()
        release = asyncio.Event()

        async def slow():
            with accounts.in_flight.track():
                entered.set()
                await release.wait()

        task = asyncio.create_task(slow())
        await entered.wait()
        headers = {"Authorization": f"Bearer {token}"}
        assert (await api.get("/api/stats", headers=headers)).json()["status"] == "Busy"
        release.set()
        await task


async def test_cluster_provider_adds_nodes_and_deployments(database, token):
    accounts = AccountsContext.build(
        database, FAST_SETTINGS, SESSION_KEY, stats_provider=FakeProvider()
    )
    body = (await get_stats(accounts, token)).json()
    assert set(body) == CONTRACT_KEYS | {"nodes", "deployments"}
    assert body["nodes"][0]["gpus"][0] == {
        "name": "NVIDIA H100",
        "memory_used": 10.5,
        "memory_total": 79.6,
        "utilization": 87.0,
    }
    assert body["deployments"][0]["replicas"] == 2


@pytest.fixture
def accounts(database):
    return AccountsContext.build(database, FAST_SETTINGS, SESSION_KEY)
