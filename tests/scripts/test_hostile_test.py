"""The hostile scenario, CI-sized, against the session's Ray cluster: slow bodies,
parallel uploads and a SIGKILLed Ingress; /healthz, orphans and credits checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.loadtest.hostile.config import MIB, HostileConfig
from scripts.loadtest.hostile.runner import run_hostile
from scripts.loadtest.runner import Target
from scripts.loadtest.scenarios import Accounts
from scripts.loadtest.service import create_accounts, deploy, service_settings, target_for
from tests.support.graphs import tiny_profile

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "hostile"
PREFIX = "/hostile"


@pytest.fixture(scope="module")
def service(
    ray_serve: int, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Target, Accounts]]:
    from ray import serve

    settings = service_settings(tmp_path_factory.mktemp("hostile"))
    settings["accounts"]["hold_lease_s"] = 3
    # Short body deadlines, so slow bodies are cut off within the short run.
    settings["admission"] = {"body_idle_timeout_s": 3, "body_grace_s": 2}
    accounts = create_accounts(settings)
    more = create_accounts(settings)
    deploy(settings, tiny_profile(tiny_model_dir, max_new_tokens=8), name=APP, route_prefix=PREFIX)
    try:
        target = target_for(f"http://127.0.0.1:{ray_serve}{PREFIX}", settings, accounts)
        yield target, Accounts(payer=more.payer, drained=more.drained)
    finally:
        serve.delete(APP)


async def test_slow_bodies_uploads_and_an_ingress_kill_leave_nothing_behind(
    service: tuple[Target, Accounts],
) -> None:
    target, extra = service
    config = HostileConfig(
        duration_s=16,
        slow_anonymous=12,
        slow_authenticated=6,
        uploads=6,
        upload_bytes=4 * MIB,
        kill_at_s=5,
        concurrency=2,
        max_probe_latency_s=5.0,
    )
    report = await run_hostile(target, extra, config, app=APP, log=lambda _line: None)

    assert report.passed, report.markdown()
    assert report.kill is not None and report.window is not None
    anonymous, with_token = report.slow
    assert anonymous.outcomes["503"] > 0  # beyond max_anonymous_bodies (8)
    assert with_token.outcomes["429"] > 0  # beyond the user's 4 requests in flight
    assert anonymous.outcomes["408"] + with_token.outcomes["408"] > 0
    assert report.uploads.succeeded > 0 and report.disk.orphan_count == 0
    rec = report.reconciliation
    assert rec.db_checked and rec.credits_ok
    assert all(u.open_reservations == 0 for u in rec.users)
