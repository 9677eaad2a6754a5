"""The load test's core against the session's Ray cluster: a short run of the real mix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.loadtest.config import LoadConfig
from scripts.loadtest.runner import Target, run_load_test
from scripts.loadtest.service import create_accounts, deploy, service_settings, target_for
from tests.support.graphs import tiny_profile

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "loadtest"
PREFIX = "/loadtest"


@pytest.fixture(scope="module")
def target(
    ray_serve: int, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    from ray import serve

    settings = service_settings(tmp_path_factory.mktemp("loadtest"))
    accounts = create_accounts(settings)
    deploy(settings, tiny_profile(tiny_model_dir, max_new_tokens=8), name=APP, route_prefix=PREFIX)
    try:
        yield target_for(f"http://127.0.0.1:{ray_serve}{PREFIX}", settings, accounts)
    finally:
        serve.delete(APP)


async def test_mixed_traffic_has_no_5xx_and_reconciles(target: Target) -> None:
    config = LoadConfig(
        duration_s=12,
        concurrency=4,
        max_requests=500,
        poll_interval_s=0.5,
        drain_timeout_s=60,
        grace_s=30,
        seed=7,
    )
    report = await run_load_test(target, config, log=lambda _line: None)

    assert report.recorder.server_errors == 0, report.recorder.failures
    assert report.passed, report.text()
    assert {"analyze:image", "story", "job:submit", "stats"} <= set(report.recorder.kinds)
    rec = report.reconciliation
    assert rec.db_checked and rec.credits_ok and rec.jobs_ok
    assert rec.client_jobs == rec.db_jobs and not rec.db_unfinished_jobs
    for user in rec.users:
        assert user.api_balance == user.expected == user.db_balance == user.ledger_sum
        assert user.open_reservations == 0
    payer = next(u for u in rec.users if u.role == "payer")
    assert payer.charged > 0
    assert report.to_json()["passed"] is True
