"""The real Ray Serve graph on CPU with the tiny model, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_app.app import AppArgs, ModelEntry, build_app
from serve_app.engines.profile import TINY_MODEL, ModelProfile
from tests.support.media_files import make_image, make_video

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def tiny_profile(model_dir: Path, name: str = "tiny-qwen2.5-vl") -> ModelProfile:
    return ModelProfile(
        name=name,
        backend="transformers",
        model=str(model_dir),
        device="cpu",
        torch_threads=1,
        max_new_tokens=16,
    )


@pytest.fixture(scope="module")
def graph(ray_serve: int, tiny_model_dir: Path, tmp_path_factory) -> Iterator[str]:
    from ray import serve

    data_dir = tmp_path_factory.mktemp("data")
    args = AppArgs(
        models=[ModelEntry(profile=tiny_profile(tiny_model_dir))],
        settings={"data_dir": str(data_dir), "inline_media_bytes": 8_000},
    )
    serve.run(build_app(args), name="graph", route_prefix="/graph")
    try:
        yield f"http://127.0.0.1:{ray_serve}/graph"
    finally:
        serve.delete("graph")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {
        "jpeg": make_image(root / "a.jpg", "jpeg", 96, 64),
        "video": make_video(root / "clip.mp4", frames=90, width=160, height=120),
        "big_video": make_video(
            root / "big.mkv", container="mkv", frames=30, width=320, height=240, pattern="photo"
        ),
    }


def post(url: str, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as f:
        return httpx.post(
            f"{url}/api/analyze", files={"file": (path.name, f)}, data=fields, timeout=120
        )


def test_image_is_described(graph: str, media: dict[str, Path]) -> None:
    response = post(graph, media["jpeg"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"].strip()
    assert body["tokens_used"] == 0
    assert body["remaining_tokens"] is None
    assert response.headers["x-request-id"]


def test_video_is_described(graph: str, media: dict[str, Path]) -> None:
    response = post(graph, media["video"], interval="30", prompt="What happens?")
    assert response.status_code == 200, response.text
    assert response.json()["result"].strip()


def test_large_video_goes_by_path(graph: str, media: dict[str, Path]) -> None:
    # Over inline_media_bytes (8 kB here): the extractor reads the shared spool file.
    assert media["big_video"].stat().st_size > 8_000
    response = post(graph, media["big_video"], interval="5")
    assert response.status_code == 200, response.text


def test_unknown_model_lists_the_configured_ones(graph: str, media: dict[str, Path]) -> None:
    response = post(graph, media["jpeg"], model_path="nope")
    assert response.status_code == 400
    assert "tiny-qwen2.5-vl" in response.json()["detail"]


def test_mislabelled_file_is_rejected(graph: str, tmp_path: Path) -> None:
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"this is not a video at all" * 10)
    response = post(graph, fake)
    assert response.status_code == 400
    assert "detail" in response.json()


def test_readiness_and_liveness(graph: str) -> None:
    assert httpx.get(f"{graph}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{graph}/readyz")
    assert ready.status_code == 200
    assert ready.json()["components"] == {"tiny-qwen2.5-vl": True}


def test_default_profile_is_the_tiny_model() -> None:
    entry = AppArgs().models[0]
    assert entry.load_profile().model == TINY_MODEL
