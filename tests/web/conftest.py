"""In-process apps for the page tests: the real app (tiny model, story, jobs) over httpx."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from serve_app.accounts.context import AccountsContext, open_accounts
from serve_app.accounts.users import User, create_user
from serve_app.config import Settings
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.http.app import create_app
from serve_app.jobs.context import JobsContext
from serve_app.pipeline.describe import DescribePipeline
from serve_app.story.pipeline import StoryPipeline
from tests.support.graphs import FAST_ACCOUNTS

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-password"


@dataclass
class Site:
    """An app with one signed-up user; ``client()`` opens an httpx client on it."""

    accounts: AccountsContext
    user: User
    client: Callable[..., httpx.AsyncClient]
    #: The ASGI app itself (to serve it on a real port).
    app: FastAPI
    #: The video jobs' context (None without jobs), to run a job worker next to the app.
    jobs: JobsContext | None = None

    @contextlib.asynccontextmanager
    async def signed_in(self) -> AsyncIterator[httpx.AsyncClient]:
        async with self.client() as client:
            response = await client.post(
                "/login", json={"username": self.user.username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            yield client


def build_site(
    engine_pair,
    tmp_path: Path,
    *,
    story: bool = True,
    jobs: bool = True,
    http: dict[str, Any] | None = None,
    more_settings: dict[str, Any] | None = None,
) -> tuple[Site, Callable[[], None]]:
    """The app over ``engine_pair``; ``more_settings`` go to :class:`Settings` as well."""
    profile, engine = engine_pair
    settings = Settings(
        data_dir=tmp_path / "data",
        accounts={**FAST_ACCOUNTS, "rate_limit_burst": 10_000},
        http=http or {},
        **(more_settings or {}),
    )
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine)}, profile.name, settings.media
    )
    accounts = open_accounts(settings)
    user = create_user(accounts.database, accounts.passwords, "alice", PASSWORD, credits=70)
    job_context = None
    if jobs:
        catalog = FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")
        job_context = JobsContext.build(
            settings,
            accounts.database,
            catalog,
            profiles={profile.name: profile},
            default_model=profile.name,
        )
    app = create_app(
        pipeline,
        settings,
        accounts,
        story=StoryPipeline.in_process(pipeline, profile, engine) if story else None,
        jobs=job_context,
    )

    def client(root_path: str = "") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path=root_path)
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30)

    return Site(accounts, user, client, app, job_context), accounts.close


@pytest.fixture
async def site(tiny_engine, tmp_path: Path) -> AsyncIterator[Site]:
    built, close = build_site(tiny_engine, tmp_path)
    yield built
    close()
