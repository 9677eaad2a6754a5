"""The real Ray Serve graph on CPU with the tiny model, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_app.app import AppArgs, ModelEntry, build_app
from serve_app.engines.profile import TINY_MODEL
from tests.support.graphs import FAST_ACCOUNTS, create_api_token, tiny_profile
from tests.support.media_files import make_image, make_video

pytestmark = [pytest.mark.ray, pytest.mark.slow]


GRAPH_SETTINGS = {
    "inline_media_bytes": 8_000,
    "accounts": FAST_ACCOUNTS,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def tokens(data_dir: Path) -> dict[str, str]:
    """An admin's and a paying user's API tokens in the graph's SQLite database."""
    settings = {"data_dir": str(data_dir), **GRAPH_SETTINGS}
    return {
        "admin": create_api_token(settings, "admin", admin=True)[0],
        "user": create_api_token(settings, "user", credits=25)[0],
    }


@pytest.fixture(scope="module")
def graph(ray_serve: int, tiny_model_dir: Path, data_dir: Path, tokens) -> Iterator[str]:
    from ray import serve

    args = AppArgs(
        models=[ModelEntry(profile=tiny_profile(tiny_model_dir))],
        story_model=None,  # the Story API's graph is tests/deployments/test_story_writer.py
        settings={"data_dir": str(data_dir), **GRAPH_SETTINGS},
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


TOKENS: dict[str, str] = {}


@pytest.fixture(autouse=True, scope="module")
def _remember_tokens(tokens: dict[str, str]) -> None:
    TOKENS.update(tokens)


def post(url: str, path: Path, token: str = "admin", **fields: str) -> httpx.Response:
    with path.open("rb") as f:
        return httpx.post(
            f"{url}/api/analyze",
            files={"file": (path.name, f)},
            data=fields,
            headers={"Authorization": f"Bearer {TOKENS[token]}"},
            timeout=120,
        )


def test_image_is_described(graph: str, media: dict[str, Path]) -> None:
    response = post(graph, media["jpeg"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"].strip()
    assert body["tokens_used"] == 0  # admins are not charged
    assert response.headers["x-request-id"]


def test_video_is_described(graph: str, media: dict[str, Path]) -> None:
    response = post(graph, media["video"], interval="30", prompt="What happens?")
    assert response.status_code == 200, response.text
    assert response.json()["result"].strip()
    # What the FrameExtractor replica sampled comes back through the model replica.
    sampling = response.json()["sampling"]
    assert sampling["frame_indices"][0] == 0 and sampling["thinned"] is False
    assert all(i % 30 == 0 for i in sampling["frame_indices"])


def test_large_video_goes_by_path(graph: str, media: dict[str, Path]) -> None:
    # Over inline_media_bytes (8 kB here): shipped through the object store, not by path.
    assert media["big_video"].stat().st_size > 8_000
    response = post(graph, media["big_video"], interval="5")
    assert response.status_code == 200, response.text


def test_paying_user_is_charged_then_refused(graph: str, media: dict[str, Path]) -> None:
    first = post(graph, media["jpeg"], token="user")
    assert first.status_code == 200, first.text
    assert first.json()["tokens_used"] == 10
    assert first.json()["remaining_tokens"] == 15
    assert post(graph, media["jpeg"], token="user").json()["remaining_tokens"] == 5
    broke = post(graph, media["jpeg"], token="user")
    assert broke.status_code == 402


def test_unauthenticated_request_is_401(graph: str, media: dict[str, Path]) -> None:
    with media["jpeg"].open("rb") as f:
        response = httpx.post(f"{graph}/api/analyze", files={"file": ("a.jpg", f)})
    assert response.status_code == 401


def test_stats_cover_nodes_and_deployments(graph: str) -> None:
    response = httpx.get(
        f"{graph}/api/stats", headers={"Authorization": f"Bearer {TOKENS['admin']}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gpu_count"] == 0 and body["gpus"] == []
    assert len(body["nodes"]) == 1
    node = body["nodes"][0]
    assert node["alive"] and node["ram_total"] > 0
    names = {d["name"]: d for d in body["deployments"]}
    assert {"Ingress", "FrameExtractor", "VisionLanguageModel"} <= set(names)
    assert names["VisionLanguageModel"]["replicas"] == 1


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


def test_forwarded_for_cannot_reset_the_limiters(graph: str) -> None:
    """Issue 15, item 8: a loopback client rotating ``X-Forwarded-For`` is still one client.

    Serve's HTTP proxy runs uvicorn, which by default believes ``X-Forwarded-For`` from
    loopback peers; the service starts Ray so that it trusts no proxy unless configured.
    """
    statuses = []
    for attempt in range(12):
        response = httpx.post(
            f"{graph}/login",
            json={"username": "admin", "password": "wrong password"},
            headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
            timeout=30,
        )
        statuses.append(response.status_code)
    assert 429 in statuses, statuses
    invalid = []
    for attempt in range(40):
        response = httpx.get(
            f"{graph}/api/me",
            headers={
                "Authorization": f"Bearer sa_{attempt:040d}",
                "X-Forwarded-For": f"198.51.100.{attempt}",
            },
            timeout=30,
        )
        invalid.append(response.status_code)
    assert 429 in invalid, invalid
