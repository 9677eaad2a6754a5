"""A chunked upload through the real Ray Serve graph, sent by the upload client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.clients.chunked_upload import ChunkUploader, UploadOptions
from serve_app.app import AppArgs, ModelEntry, build_app
from tests.support.graphs import FAST_ACCOUNTS, create_api_token, tiny_profile
from tests.support.media_files import make_video
from tests.support.uploads import media_leftovers

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP_NAME = "uploads"
PREFIX = "/uploads-graph"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("upload-graph")


@pytest.fixture(scope="module")
def settings(data_dir: Path) -> dict[str, object]:
    return {
        "data_dir": str(data_dir),
        "inline_media_bytes": 8_000,  # the assembled video is shipped as a file
        "uploads": {"max_chunk_bytes": 1024 * 1024},
        "accounts": FAST_ACCOUNTS,
    }


@pytest.fixture(scope="module")
def token(settings: dict[str, object]) -> str:
    return create_api_token(settings, "uploader", credits=20)[0]


@pytest.fixture(scope="module")
def url(ray_serve: int, tiny_model_dir: Path, settings, token) -> Iterator[str]:
    from ray import serve

    profile = tiny_profile(tiny_model_dir, max_new_tokens=8)
    args = AppArgs(models=[ModelEntry(profile=profile)], story_model=None, settings=settings)
    serve.run(build_app(args), name=APP_NAME, route_prefix=PREFIX)
    try:
        yield f"http://127.0.0.1:{ray_serve}{PREFIX}/"
    finally:
        serve.delete(APP_NAME)


async def test_video_in_three_chunks_through_the_graph(url, token, data_dir, tmp_path):
    video = make_video(tmp_path / "clip.mp4", frames=60, width=320, height=240, pattern="photo")
    size = video.stat().st_size
    assert size > 8_000
    options = UploadOptions(
        chunk_bytes=-(-size // 3), upload_id="graph-clip", fields={"interval": "15"}
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        requests: list[str] = []

        async def count(request: httpx.Request) -> None:
            requests.append(request.method)

        client.event_hooks["request"] = [count]
        body = await ChunkUploader(client, options).upload(video)
        assert body["result"].strip()
        assert body["tokens_used"] == 10 and body["remaining_tokens"] == 10
        assert requests == ["GET", "POST", "POST", "POST"]
        status = (await client.get("api/uploads/graph-clip")).json()
    assert status["state"] == "done" and status["received_bytes"] == size
    assert media_leftovers(data_dir / "uploads") == []
    assert list((data_dir / "spool").glob("*")) == []
