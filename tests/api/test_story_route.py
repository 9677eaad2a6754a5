"""POST /analyze/ through the real app: tiny model in process, credits on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from serve_app.accounts.context import AccountsContext, open_accounts
from serve_app.config import Settings
from serve_app.errors import BackendUnavailable
from serve_app.http.app import create_app
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.describe import DescribePipeline
from serve_app.story.pipeline import StoryPipeline
from serve_app.story.settings import StorySettings
from tests.api.test_analyze_credits import ACCOUNT_SETTINGS, bearer
from tests.support.databases import SESSION_KEY
from tests.support.media_files import make_image, make_video, truncate_file
from tests.support.story_engines import RecordingEngine, ScriptedEngine

STORY = StorySettings(max_image_bytes=50_000, max_video_bytes=10_000, cost=7)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("story-route")
    video = make_video(root / "clip.mp4", frames=60, width=160, height=120)
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "big.png")
    return {
        "jpeg": make_image(root / "a.jpg", "jpeg", 80, 60),
        "png": make_image(root / "b.png", "png", 60, 80),
        "webp": make_image(root / "c.webp", "webp", 64, 64),
        "video": video,
        "big_png": root / "big.png",
        "big_video": make_video(
            root / "big.mp4", frames=30, width=320, height=240, pattern="photo"
        ),
        "cut": truncate_file(video, root / "cut.mp4", 0.3),
    }


def form(files: dict[str, Path], *names: str) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (files[n].name, files[n].read_bytes())) for n in names]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", story=STORY)


class Engines:
    """The engines of one test app: every vision and story call recorded."""

    def __init__(self, tiny_engine, writer=None, vision=None) -> None:
        self.profile, engine = tiny_engine
        self.vision = vision or RecordingEngine(engine)
        self.writer = writer or RecordingEngine(engine)

    def pipelines(self, settings: Settings) -> tuple[DescribePipeline, StoryPipeline]:
        models = {self.profile.name: (self.profile, self.vision)}
        vision = DescribePipeline.in_process(models, self.profile.name, settings.media)
        return vision, StoryPipeline.in_process(vision, self.profile, self.writer)

    def recorded(self) -> list:
        return [*self.vision.results, *self.writer.results]


def client_for(
    engines: Engines, settings: Settings, accounts: AccountsContext
) -> httpx.AsyncClient:
    vision, story = engines.pipelines(settings)
    app = create_app(vision, settings, accounts, story=story)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120)


@pytest.fixture
def sqlite_accounts(settings: Settings):
    accounts = open_accounts(settings.model_copy(update={"accounts": ACCOUNT_SETTINGS}))
    yield accounts
    accounts.close()


@pytest.fixture
def admin(sqlite_accounts) -> dict[str, str]:
    return bearer(sqlite_accounts, "admin", credits=0, admin=True)


@pytest.fixture
def engines(tiny_engine) -> Engines:
    return Engines(tiny_engine)


@pytest.fixture
async def client(engines, settings, sqlite_accounts):
    async with client_for(engines, settings, sqlite_accounts) as c:
        yield c


def usage_of(results) -> dict[str, int]:
    inputs = sum(r.input_tokens for r in results)
    outputs = sum(r.output_tokens for r in results)
    return {"input_tokens": inputs, "output_tokens": outputs, "total_tokens": inputs + outputs}


# -- success ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "observations"),
    [(["jpeg"], 1), (["jpeg", "png", "webp"], 3), (["video"], 1)],
    ids=["one-image", "three-images", "video"],
)
async def test_story_and_thai_translation(client, admin, engines, files, names, observations):
    response = await client.post("/analyze/", files=form(files, *names), headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    sampling = body.pop("sampling", None)  # added for a video: the frames the model saw
    assert set(body) == {"english", "thai", "token_usage"}
    assert body["english"].strip() and body["thai"].strip()
    assert len(engines.vision.results) == observations and len(engines.writer.results) == 2
    if names == ["video"]:
        assert sampling is not None and sampling["source_fps"] == pytest.approx(30.0)
        assert sampling["frame_indices"][0] == 0 and sampling["requested_frames"] >= 2
        assert len(sampling["timestamps"]) == len(sampling["frame_indices"])
    else:
        assert sampling is None
    assert body["token_usage"] == usage_of(engines.recorded())
    assert body["token_usage"]["input_tokens"] > 0


async def test_other_language_has_translation_and_language(client, admin, engines, files):
    response = await client.post(
        "/analyze/",
        files=form(files, "jpeg"),
        data={"language": "ja", "prompt": "A haiku-like tale."},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"english", "translation", "language", "token_usage"}
    assert body["language"] == "ja"
    assert "Japanese" in (engines.writer.requests[1].system or "")
    assert "A haiku-like tale." in engines.writer.requests[0].prompt


async def test_truncated_story_is_trimmed_and_flagged(
    tiny_engine, settings, sqlite_accounts, files
):
    writer = ScriptedEngine(["It was late. The cat sle", "ดึกแล้ว"], finish_reason="length")
    admin = bearer(sqlite_accounts, "root", credits=0, admin=True)
    async with client_for(Engines(tiny_engine, writer=writer), settings, sqlite_accounts) as c:
        response = await c.post("/analyze/", files=form(files, "jpeg"), headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["english"] == "It was late."
    assert response.headers["x-story-truncated"] == "english, translation"


# -- refused requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "detail"),
    [
        (["jpeg", "video"], "images and a video"),
        (["video", "video"], "2 videos"),
        (["jpeg"] * 9, "at most 8 images"),
    ],
)
async def test_bad_file_sets_are_400(client, admin, engines, files, names, detail):
    response = await client.post("/analyze/", files=form(files, *names), headers=admin)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert engines.vision.requests == []


async def test_no_file_is_400(client, admin):
    response = await client.post("/analyze/", data={"prompt": "hi"}, headers=admin)
    assert response.status_code == 400
    assert "files" in response.json()["detail"]


@pytest.mark.parametrize(
    ("names", "big", "kind", "limit"),
    [(["jpeg", "big_png"], 2, "image", 50_000), (["big_video"], 1, "video", 10_000)],
)
async def test_oversized_files_are_400_naming_file_and_limit(
    client, admin, files, names, big, kind, limit
):
    path = files[names[big - 1]]
    response = await client.post("/analyze/", files=form(files, *names), headers=admin)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        f'file {big} ("{path.name}"): the {kind} is {path.stat().st_size} bytes; '
        f"the limit per {kind} is {limit} bytes"
    )


async def test_undecodable_video_is_422(client, admin, files):
    response = await client.post("/analyze/", files=form(files, "cut"), headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"].startswith('file 1 ("cut.mp4"): ')


async def test_text_posing_as_image_is_400(client, admin, files):
    fake = [("files", ("a.jpg", files["jpeg"].read_bytes())), ("files", ("x.png", b"hello"))]
    response = await client.post("/analyze/", files=fake, headers=admin)
    assert response.status_code == 400
    assert response.json()["detail"].startswith('file 2 ("x.png")')


@pytest.mark.parametrize("language", ["thai!", "xx", "en"])
async def test_bad_language_is_400(client, admin, files, language):
    response = await client.post(
        "/analyze/", files=form(files, "jpeg"), data={"language": language}, headers=admin
    )
    assert response.status_code == 400
    assert "language" in response.json()["detail"]


async def test_unauthenticated_is_401(client, files):
    response = await client.post("/analyze/", files=form(files, "jpeg"))
    assert response.status_code == 401


def local_client(
    engines: Engines, settings: Settings, accounts: AccountsContext, peer: str, listen: str
) -> httpx.AsyncClient:
    vision, story = engines.pipelines(settings)
    app = create_app(vision, settings, accounts, story=story, listen_host=listen)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://localhost:8000", timeout=120)


async def test_local_anonymous_story_is_free_and_limited(engines, settings, files, caplog):
    """The ImgStory document: no authentication for local use (loopback only)."""
    limited = settings.model_copy(
        update={"accounts": ACCOUNT_SETTINGS.model_copy(update={"anonymous_story_burst": 1})}
    )
    accounts = open_accounts(limited)
    async with local_client(engines, limited, accounts, "127.0.0.1", "127.0.0.1") as c:
        with caplog.at_level("INFO", logger="serve_app.accounts.anonymous"):
            first = await c.post("/analyze/", files=form(files, "jpeg"))
        assert first.status_code == 200, first.text
        assert set(first.json()) == {"english", "thai", "token_usage"}
        assert "anonymous local story request from 127.0.0.1" in caplog.text
        second = await c.post("/analyze/", files=form(files, "jpeg"))
        assert second.status_code == 429 and "Retry-After" in second.headers
        # Credentials are still checked, never replaced by anonymous mode.
        bad = await c.post(
            "/analyze/", files=form(files, "jpeg"), headers={"Authorization": "Bearer sa_x"}
        )
        assert bad.status_code == 401
    accounts.close()


@pytest.mark.parametrize(
    ("peer", "listen", "headers"),
    [
        ("203.0.113.5", "127.0.0.1", {}),
        ("127.0.0.1", "0.0.0.0", {}),
        ("127.0.0.1", "127.0.0.1", {"X-Forwarded-For": "203.0.113.5"}),
    ],
    ids=["remote-peer", "public-listener", "proxied"],
)
async def test_anonymous_story_needs_a_loopback_only_service(
    engines, settings, sqlite_accounts, files, peer, listen, headers
):
    async with local_client(engines, settings, sqlite_accounts, peer, listen) as c:
        response = await c.post("/analyze/", files=form(files, "jpeg"), headers=headers)
    assert response.status_code == 401


# -- model faults -------------------------------------------------------------------


async def test_empty_story_is_502(tiny_engine, settings, sqlite_accounts, files):
    admin = bearer(sqlite_accounts, "root", credits=0, admin=True)
    silent = Engines(tiny_engine, writer=ScriptedEngine([" \n "]))
    async with client_for(silent, settings, sqlite_accounts) as c:
        response = await c.post("/analyze/", files=form(files, "jpeg"), headers=admin)
    assert response.status_code == 502
    assert response.json() == {"detail": "the model returned an empty story"}


async def test_story_backend_down_is_503(tiny_engine, settings, sqlite_accounts, files):
    admin = bearer(sqlite_accounts, "root", credits=0, admin=True)
    down = ScriptedEngine(error=BackendUnavailable("story model is down", retry_after_s=9))
    async with client_for(Engines(tiny_engine, writer=down), settings, sqlite_accounts) as c:
        response = await c.post("/analyze/", files=form(files, "jpeg"), headers=admin)
        ready = await c.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "9"
    assert ready.json()["components"] == {"tiny-qwen2.5-vl": True, "story:tiny-qwen2.5-vl": True}


# -- app wiring ---------------------------------------------------------------------


async def test_story_route_is_documented(client):
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/analyze/"]["post"]
    assert {"400", "422", "429", "502", "503"} <= set(operation["responses"])


async def test_without_story_pipeline_there_is_no_story_route(
    tiny_engine, settings, sqlite_accounts, admin, files
):
    profile, engine = tiny_engine
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine)}, profile.name, MediaLimits()
    )
    app = create_app(pipeline, settings, sqlite_accounts)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        response = await c.post("/analyze/", files=form(files, "jpeg"), headers=admin)
        ready = await c.get("/readyz")
    assert response.status_code == 404
    assert ready.json()["components"] == {"tiny-qwen2.5-vl": True}


# -- credits (SQLite and PostgreSQL) ------------------------------------------------


@pytest.fixture
def accounts(database) -> AccountsContext:
    return AccountsContext.build(database, ACCOUNT_SETTINGS, SESSION_KEY)


async def test_story_is_charged_once_per_idempotency_key(engines, settings, accounts, files):
    headers = bearer(accounts, "alice", credits=25) | {"Idempotency-Key": "story-1"}
    user_id = int(headers["X-Test-User-Id"])
    async with client_for(engines, settings, accounts) as c:
        first = await c.post("/analyze/", files=form(files, "jpeg"), headers=headers)
        assert first.status_code == 200, first.text
        again = await asyncio.gather(
            *(c.post("/analyze/", files=form(files, "jpeg"), headers=headers) for _ in range(3))
        )
        other = await c.post(
            "/analyze/", files=form(files, "jpeg"), data={"language": "fr"}, headers=headers
        )
    assert all(r.status_code == 200 and r.json() == first.json() for r in again)
    assert all(r.headers["idempotent-replayed"] == "true" for r in again)
    assert other.status_code == 422
    assert len(engines.writer.results) == 2  # one story and one translation, run once
    assert accounts.credits.balance(user_id) == 25 - STORY.cost
    assert accounts.credits.ledger_sum(user_id) == 25 - STORY.cost


async def test_failed_story_releases_the_credits(tiny_engine, settings, accounts, files):
    headers = bearer(accounts, "bob", credits=10)
    user_id = int(headers["X-Test-User-Id"])
    silent = Engines(tiny_engine, writer=ScriptedEngine([""]))
    async with client_for(silent, settings, accounts) as c:
        failed = await c.post("/analyze/", files=form(files, "jpeg"), headers=headers)
        refused = await c.post("/analyze/", files=form(files, "cut"), headers=headers)
    assert (failed.status_code, refused.status_code) == (502, 422)
    assert accounts.credits.balance(user_id) == 10
    assert accounts.credits.ledger_sum(user_id) == 10
    assert accounts.in_flight.count == 0


async def test_broke_user_gets_402_and_no_model_runs(engines, settings, accounts, files):
    headers = bearer(accounts, "eve", credits=STORY.cost - 1)
    async with client_for(engines, settings, accounts) as c:
        response = await c.post("/analyze/", files=form(files, "jpeg"), headers=headers)
    assert response.status_code == 402
    assert engines.vision.requests == [] and engines.writer.requests == []
