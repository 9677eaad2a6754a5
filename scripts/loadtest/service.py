"""A service to test: the whole graph on the tiny CPU model, and the run's users.

:func:`local_service` starts its own Ray cluster (own ``RAY_TMPDIR``, Serve on a free
loopback port; :func:`scripts.bench.env.ray_cluster`) in a scratch directory and
stops everything on the way out, errors and Ctrl-C included. Tests use
:func:`create_accounts` and :func:`deploy` with their own cluster.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.bench.env import ACCOUNT_SETTINGS, ray_cluster, tiny_profile
from scripts.loadtest.ledger import Account, Role
from scripts.loadtest.runner import Target
from scripts.loadtest.scenarios import Accounts
from serve_app.engines.profile import ModelProfile

APP_NAME = "serve_app_loadtest"
#: ``--backpressure``: queues so short that concurrency 8 overflows them, so the
#: 503 + ``Retry-After`` path (and the release of credits it implies) is exercised.
BACKPRESSURE_OPTIONS: dict[str, dict[str, Any]] = {
    "FrameExtractor": {"max_ongoing_requests": 1, "max_queued_requests": 1},
    "VisionLanguageModel": {"max_ongoing_requests": 2, "max_queued_requests": 1},
    "StoryWriter": {"max_ongoing_requests": 1, "max_queued_requests": 1},
}
#: Opening balances: enough for any bounded run, and enough for a handful of requests.
PAYER_CREDITS = 10_000_000
DRAINED_CREDITS = 60


def service_settings(data_dir: Path, database_url: str | None = None) -> dict[str, Any]:
    """App settings: cheap password hashing, rate limits far above the test's rate."""
    settings: dict[str, Any] = {"data_dir": str(data_dir), "accounts": dict(ACCOUNT_SETTINGS)}
    if database_url:
        settings["database_url"] = database_url
    return settings


def create_accounts(
    settings: dict[str, Any],
    *,
    payer_credits: int = PAYER_CREDITS,
    drained_credits: int = DRAINED_CREDITS,
) -> Accounts:
    """A paying user, one whose credits run out, and an admin, each with an API token.

    Names are unique per call (``lt-<role>-<random>``), so runs can share a database.
    """
    from serve_app.accounts.context import open_accounts
    from serve_app.accounts.users import create_user
    from serve_app.config import Settings

    suffix = uuid.uuid4().hex[:8]
    context = open_accounts(Settings(**settings))
    try:

        def make(role: Role, credits: int, admin: bool = False) -> Account:
            name = f"lt-{role}-{suffix}"
            user = create_user(
                context.database, context.passwords, name, f"pw-{uuid.uuid4().hex}",
                is_admin=admin, credits=credits,
            )  # fmt: skip
            return Account(role, name, context.tokens.create(user.id, "load test").token)

        return Accounts(
            payer=make("payer", payer_credits),
            drained=make("drained", drained_credits),
            admin=make("admin", 0, admin=True),
        )
    finally:
        context.close()


def target_for(base_url: str, settings: dict[str, Any], accounts: Accounts) -> Target:
    """The :class:`Target` of an app deployed with ``settings``: its database, story cost."""
    from serve_app.config import Settings
    from serve_app.storage.db import database_url_for

    resolved = Settings(**settings)
    return Target(
        base_url=base_url,
        accounts=accounts,
        database_url=database_url_for(resolved.database_url, resolved.data_dir),
        story_cost=resolved.story.cost,
        settings=settings,
    )


def deploy(
    settings: dict[str, Any],
    profile: ModelProfile,
    *,
    name: str,
    route_prefix: str,
    options: dict[str, dict[str, Any]] | None = None,
) -> None:
    """``serve.run`` the whole graph (analysis, story, jobs) with ``profile`` everywhere.

    ``options`` are per-deployment overrides (see :func:`serve_app.app.build_graph`).
    """
    from ray import serve

    from serve_app.app import AppArgs, ModelEntry, build_graph

    args = AppArgs(
        models=[ModelEntry(profile=profile)],
        story_model=ModelEntry(profile=profile),
        settings=settings,
    )
    serve.run(build_graph(args, options), name=name, route_prefix=route_prefix)


@contextlib.contextmanager
def local_service(
    *,
    num_cpus: int = 2,
    database_url_override: str | None = None,
    keep: bool = False,
    backpressure: bool = False,
    overrides: dict[str, dict[str, Any]] | None = None,
    log: Any = print,
) -> Iterator[Target]:
    """The CPU profile on ``127.0.0.1`` in a scratch directory, with fresh users.

    ``backpressure`` deploys with :data:`BACKPRESSURE_OPTIONS`; ``overrides`` are
    settings sections merged over :func:`service_settings` (e.g. ``{"accounts":
    {"hold_lease_s": 3}}``).
    """
    root = Path(tempfile.mkdtemp(prefix="serve-app-loadtest-"))
    try:
        data_dir = root / "data"
        data_dir.mkdir()
        profile = tiny_profile(data_dir)
        settings = service_settings(data_dir, database_url_override)
        for section, values in (overrides or {}).items():
            settings[section] = {**settings.get(section, {}), **values}
        accounts = create_accounts(settings)
        with ray_cluster(num_cpus) as cluster:
            log(f"deploying the CPU profile on 127.0.0.1:{cluster.port} (data in {root})")
            options = BACKPRESSURE_OPTIONS if backpressure else None
            deploy(settings, profile, name=APP_NAME, route_prefix="/", options=options)
            yield target_for(f"http://127.0.0.1:{cluster.port}/", settings, accounts)
    finally:
        if keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
