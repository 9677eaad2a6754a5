"""``GET /api/capabilities``: every value from the app's real settings and catalogs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.config import Settings
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.http.app import create_app
from serve_app.http.capabilities import FORM_OVERHEAD_BYTES, describe_capabilities
from serve_app.http.context import AppContext
from serve_app.jobs.context import JobsContext
from serve_app.jobs.settings import JobSettings
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.describe import DescribePipeline
from serve_app.story.languages import LANGUAGES
from serve_app.story.pipeline import StoryPipeline
from serve_app.story.settings import StorySettings
from serve_app.uploads.settings import UploadSettings
from tests.api.conftest import tiny_profile
from tests.jobs.conftest import make_user
from tests.support.databases import FAST_SETTINGS, SESSION_KEY
from tests.support.story_engines import ScriptedEngine

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def custom_settings(data_dir: Path) -> Settings:
    """Settings unlike the defaults everywhere, so no value can come from a copy."""
    return Settings(
        data_dir=data_dir,
        accounts=FAST_SETTINGS.model_copy(update={"analysis_cost": 7}),
        default_interval=4,
        default_prompt="Say what you see.",
        default_video_prompt="Say what happens.",
        max_prompt_chars=300,
        max_request_bytes=20 * MIB,
        media=MediaLimits(max_image_bytes=3 * MIB, max_video_bytes=64 * MIB),
        uploads=UploadSettings(chunk_bytes=2 * MIB, max_chunk_bytes=4 * MIB, max_chunks=99),
        story=StorySettings(
            cost=3,
            max_images=5,
            max_image_bytes=MIB,
            max_video_bytes=128 * MIB,
            default_language="pt-br",
        ),
        jobs=JobSettings(
            min_infer_fps=0.5,
            max_infer_fps=12,
            credits_per_frame=2,
            model_prices={"face-detection": 5},
            max_models_per_job=3,
            max_frames_per_job=777,
            max_upload_bytes=50 * MIB,
        ),
    )


def build(
    accounts: AccountsContext,
    settings: Settings,
    *,
    story: bool = True,
    jobs: bool = True,
    captioner: bool = True,
) -> tuple[httpx.AsyncClient, AppContext, JobsContext | None]:
    """An app whose models are never called (an analysis is not what is tested)."""
    a = tiny_profile(settings.data_dir / "a", name="model-a")
    b = tiny_profile(settings.data_dir / "b", name="model-b")
    engine = ScriptedEngine()
    pipeline = DescribePipeline.in_process(
        {"model-a": (a, engine), "model-b": (b, engine)}, "model-b", settings.media
    )
    story_pipeline = StoryPipeline.in_process(pipeline, a, engine) if story else None
    jobs_ctx = None
    if jobs:
        catalog = FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")
        profiles = {"model-a": a} if captioner else {}
        jobs_ctx = JobsContext.build(
            settings, accounts.database, catalog, profiles=profiles, default_model="model-a"
        )
    app = create_app(pipeline, settings, accounts, story=story_pipeline, jobs=jobs_ctx)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://test")
    return client, app.state.context, jobs_ctx


@pytest.fixture
def accounts(database) -> AccountsContext:
    return AccountsContext.build(database, FAST_SETTINGS, SESSION_KEY)


@pytest.fixture
def bearer(accounts: AccountsContext) -> dict[str, str]:
    user = make_user(accounts)
    return {"Authorization": f"Bearer {accounts.tokens.create(user.id, 't').token}"}


@pytest.fixture
async def full(
    accounts, tmp_path
) -> AsyncIterator[tuple[httpx.AsyncClient, AppContext, JobsContext | None]]:
    client, context, jobs = build(accounts, custom_settings(tmp_path / "data"))
    async with client:
        yield client, context, jobs


async def test_everything_comes_from_the_settings(full, bearer) -> None:
    client, context, jobs = full
    r = await client.get("/api/capabilities", headers=bearer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == describe_capabilities(context, jobs).model_dump(mode="json")
    assert body["analysis"] == {
        "models": ["model-a", "model-b"],
        "default_model": "model-b",
        "default_interval": 4,
        "default_prompt": "Say what you see.",
        "default_video_prompt": "Say what happens.",
        "max_prompt_chars": 300,
        "max_image_bytes": 3 * MIB,
        "max_video_bytes": 64 * MIB,
        "analysis_cost": 7,
    }
    assert body["uploads"] == {
        "chunk_bytes": 2 * MIB,
        "max_chunk_bytes": 4 * MIB,
        "max_upload_bytes": 64 * MIB,
        "max_chunks": 99,
        "max_request_bytes": 20 * MIB,
    }
    story = body["story"]
    assert story["languages"] == [{"tag": t, "name": n} for t, n in LANGUAGES.items()]
    assert {"tag": "ja", "name": "Japanese"} in story["languages"]
    assert {k: v for k, v in story.items() if k != "languages"} == {
        "default_language": "pt-BR",  # normalised
        "max_images": 5,
        "max_image_bytes": MIB,  # the story's own cap is smaller than media's
        "max_video_bytes": 64 * MIB,  # media's cap is smaller than the story's
        "cost": 3,
    }


async def test_job_models_come_from_the_catalog_with_their_prices(full, bearer) -> None:
    client, _, _ = full
    jobs = (await client.get("/api/capabilities", headers=bearer)).json()["jobs"]
    models = {m["model_id"]: m for m in jobs.pop("models")}
    assert jobs == {
        "default_infer_fps": 1.0,  # JobRequest's default
        "min_infer_fps": 0.5,
        "max_infer_fps": 12.0,
        "max_models_per_job": 3,
        "max_frames_per_job": 777,
        "max_upload_bytes": 20 * MIB,  # max_request_bytes is the smallest cap here
        "video_extensions": [".mp4", ".m4v", ".mov", ".mkv", ".webm"],
    }
    assert list(models) == ["face-detection", "people-detection", "frame-captioner"]
    face = models["face-detection"]
    assert face == {
        "model_id": "face-detection",
        "versions": ["1"],
        "default_version": "1",
        "inference_type": "object-detection",
        "description": "Boxes of face (OpenCV Haar cascade haarcascade_frontalface_default.xml)",
        "credits_per_frame": 5,
    }
    assert models["people-detection"]["credits_per_frame"] == 2
    assert "person" in models["people-detection"]["description"]
    captioner = models["frame-captioner"]
    assert captioner["inference_type"] == "vlm" and "model-a" in captioner["description"]


async def test_story_and_jobs_are_null_when_not_mounted(accounts, bearer, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_request_bytes=MIB)
    client, context, _ = build(accounts, settings, story=False, jobs=False)
    async with client:
        body = (await client.get("/api/capabilities", headers=bearer)).json()
    assert body["story"] is None and body["jobs"] is None
    # chunks must fit in one request with the other form fields
    assert body["uploads"]["max_chunk_bytes"] == MIB - FORM_OVERHEAD_BYTES
    assert body["uploads"]["chunk_bytes"] == MIB - FORM_OVERHEAD_BYTES
    assert body["analysis"]["analysis_cost"] == settings.accounts.analysis_cost
    assert describe_capabilities(context, None).story is None


async def test_captioners_without_a_vision_model_are_left_out(accounts, bearer, tmp_path) -> None:
    client, _, _ = build(accounts, custom_settings(tmp_path / "data"), captioner=False)
    async with client:
        jobs = (await client.get("/api/capabilities", headers=bearer)).json()["jobs"]
    assert [m["model_id"] for m in jobs["models"]] == ["face-detection", "people-detection"]


async def test_any_signed_in_user_may_ask(full, accounts) -> None:
    client, _, _ = full
    user = make_user(accounts)
    assert (await client.get("/api/capabilities")).status_code == 401
    token = accounts.tokens.create(user.id, "t").token
    by_query = await client.get("/api/capabilities", params={"api_key": token})
    assert by_query.status_code == 401  # ?api_key= is for the video job routes only
    login = await client.post("/login", json={"username": user.username, "password": "a-password"})
    assert login.status_code == 200, login.text
    assert (await client.get("/api/capabilities")).status_code == 200  # the session cookie


def test_openapi_documents_capabilities(full) -> None:
    client, _, _ = full
    app = client._transport.app  # type: ignore[attr-defined]
    operation = app.openapi()["paths"]["/api/capabilities"]["get"]
    assert {"200", "401"} <= set(operation["responses"])
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/CapabilitiesResponse")
