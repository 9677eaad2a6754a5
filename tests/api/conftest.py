"""An in-process app: the real FastAPI app over a DescribePipeline with the tiny model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from serve_app.accounts.context import open_accounts
from serve_app.accounts.settings import AccountSettings
from serve_app.accounts.users import create_user
from serve_app.config import Settings
from serve_app.engines.factory import build_engine
from serve_app.engines.profile import ModelProfile, OpenAIOptions
from serve_app.http.app import create_app
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.describe import DescribePipeline


def tiny_profile(model_dir: Path, name: str = "tiny-qwen2.5-vl") -> ModelProfile:
    return ModelProfile(
        name=name,
        backend="transformers",
        model=str(model_dir),
        device="cpu",
        torch_threads=1,
        max_new_tokens=12,
    )


def unreachable_profile(port: int) -> ModelProfile:
    """A real OpenAI-compatible backend pointed at a closed loopback port."""
    return ModelProfile(
        name="down-model",
        backend="openai",
        model="down-model",
        openai=OpenAIOptions(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2, max_retries=0),
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        accounts=AccountSettings(argon2_time_cost=1, argon2_memory_kib=8, rate_limit_burst=10_000),
        max_request_bytes=3 * 1024 * 1024,
        media=MediaLimits(max_image_bytes=1024 * 1024, max_video_bytes=2 * 1024 * 1024),
    )


@pytest.fixture
async def client(tiny_engine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from tests.conftest import free_port

    profile, engine = tiny_engine
    down = unreachable_profile(free_port())
    down_engine = build_engine(down, settings.data_dir)
    await down_engine.start()
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine), down.name: (down, down_engine)},
        default_model=profile.name,
        limits=settings.media,
    )
    accounts = open_accounts(settings)
    admin = create_user(accounts.database, accounts.passwords, "admin", "admin-pass", is_admin=True)
    token = accounts.tokens.create(admin.id, "tests").token
    app = create_app(pipeline, settings, accounts)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", timeout=60, headers=headers
    ) as c:
        yield c
    accounts.close()
    await down_engine.shutdown()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> bytes:
    """A 2 s H.264 clip of the astronaut photo, panned (tests/support/job_videos.py)."""
    from tests.support.job_videos import make_astronaut_video

    return make_astronaut_video(tmp_path_factory.mktemp("v") / "a.mp4").read_bytes()
