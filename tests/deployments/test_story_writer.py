"""StoryWriter: the class on its own, then the real graph answering POST /analyze/ on CPU.

The graph runs as its own app (``story_graph`` at ``/story-graph``) on the session's Ray
cluster, with StoryWriter at 2 replicas and VisionLanguageModel at 1, every replica at
0.1 CPU so it fits beside the other graph test app on 2 cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from serve_app.app import STORY_WRITER, AppArgs, ModelEntry, build_graph
from serve_app.deployments.story_writer import StoryWriter
from serve_app.engines.base import GenerationRequest, SamplingParams
from serve_app.engines.profile import TINY_MODEL, ModelProfile
from serve_app.errors import InvalidRequest, ParameterError
from tests.support.graphs import create_api_token, tiny_profile
from tests.support.media_files import make_image, make_video
from tests.support.story_engines import ScriptedEngine

APP, PREFIX = "story_graph", "/story-graph"
SETTINGS: dict[str, Any] = {
    "accounts": {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1},
    "story": {"cost": 10, "max_video_frames": 4},
}
SMALL = {"ray_actor_options": {"num_cpus": 0.1}}
OPTIONS = {
    "Ingress": SMALL,
    "FrameExtractor": SMALL,
    "VisionLanguageModel": {**SMALL, "num_replicas": 1},
    STORY_WRITER: {**SMALL, "num_replicas": 2},
}


# -- the class, without a cluster ---------------------------------------------------


async def writer_with(engine: ScriptedEngine) -> Any:
    profile = ModelProfile(name="pen", backend="openai", model="pen", max_new_tokens=8)
    return await StoryWriter.create(lambda: engine, profile, max_batch_size=4)


async def test_writer_runs_text_within_its_token_limit() -> None:
    engine = ScriptedEngine(["Once."])
    writer = await writer_with(engine)
    request = GenerationRequest(prompt="Write.", sampling=SamplingParams(max_tokens=500))
    assert (await writer.generate(request)).text == "Once."
    assert engine.requests[0].sampling.max_tokens == 8
    assert await writer.ready()
    engine.healthy = False
    assert not await writer.ready()


async def test_writer_refuses_media() -> None:
    engine = ScriptedEngine()
    writer = await writer_with(engine)
    image = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(InvalidRequest, match="text-only"):
        await writer.generate(GenerationRequest(prompt="p", images=(image,)))
    assert engine.requests == []


async def test_writer_refuses_a_format_its_engine_cannot_honour_before_batching() -> None:
    class Batching(ScriptedEngine):
        supports_batching = True  # requests would be grouped with other callers'

    engine = Batching()
    writer = await writer_with(engine)
    fmt = SamplingParams(response_format='{"type": "json_object"}')
    with pytest.raises(ParameterError, match="response_format") as refused:
        await writer.generate(GenerationRequest(prompt="p", sampling=fmt))
    assert refused.value.param == "response_format"
    assert engine.requests == []  # refused before the batch queue (it needs a replica)

    class Constraining(ScriptedEngine):
        constrains_output = True

    constraining = Constraining()
    writer = await writer_with(constraining)
    await writer.generate(GenerationRequest(prompt="p", sampling=fmt))
    assert constraining.requests[0].sampling.response_format == fmt.response_format


def test_default_story_model_is_the_tiny_model() -> None:
    entry = AppArgs().story_model
    assert entry is not None and entry.load_profile().model == TINY_MODEL
    assert AppArgs.model_validate({"story_model": None}).story_model is None


def test_unknown_deployment_options_are_refused() -> None:
    with pytest.raises(ValueError, match="Nope"):
        build_graph(AppArgs(), {"Nope": {"num_replicas": 2}})


# -- the real graph -----------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("story-graph")


@pytest.fixture(scope="module")
def tokens(data_dir: Path) -> dict[str, str]:
    settings = {"data_dir": str(data_dir), **SETTINGS}
    return {
        "admin": create_api_token(settings, "admin", admin=True)[0],
        "user": create_api_token(settings, "user", credits=10)[0],
    }


@pytest.fixture(scope="module")
def story_graph(ray_serve: int, tiny_model_dir: Path, data_dir: Path, tokens) -> Iterator[str]:
    from ray import serve

    args = AppArgs(
        models=[ModelEntry(profile=tiny_profile(tiny_model_dir, "tiny-qwen2.5-vl"))],
        story_model=ModelEntry(profile=tiny_profile(tiny_model_dir, "tiny-story")),
        settings={"data_dir": str(data_dir), **SETTINGS},
    )
    serve.run(build_graph(args, OPTIONS), name=APP, route_prefix=PREFIX)
    try:
        yield f"http://127.0.0.1:{ray_serve}{PREFIX}"
    finally:
        serve.delete(APP)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("story-media")
    return {
        "jpeg": make_image(root / "a.jpg", "jpeg", 96, 64),
        "png": make_image(root / "b.png", "png", 64, 96),
        "video": make_video(root / "clip.mp4", frames=60, width=160, height=120),
    }


def post(url: str, token: str, paths: list[Path], **fields: str) -> httpx.Response:
    files = [("files", (p.name, p.read_bytes())) for p in paths]
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{url}/analyze/", files=files, data=fields, headers=headers, timeout=120)


def running(deployment: Any) -> int:
    states = deployment.replica_states.items()
    return sum(n for state, n in states if str(state).endswith("RUNNING"))


@pytest.mark.ray
@pytest.mark.slow
def test_story_writer_scales_apart_from_the_vision_model(story_graph: str) -> None:
    from ray import serve

    deployments = serve.status().applications[APP].deployments
    assert running(deployments[STORY_WRITER]) == 2
    assert running(deployments["VisionLanguageModel"]) == 1


@pytest.mark.ray
@pytest.mark.slow
def test_images_make_a_story_and_a_thai_translation(story_graph, tokens, media) -> None:
    response = post(story_graph, tokens["admin"], [media["jpeg"], media["png"]])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"english", "thai", "token_usage"}
    assert body["english"].strip() and body["thai"].strip()
    usage = body["token_usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


@pytest.mark.ray
@pytest.mark.slow
def test_video_story_in_japanese_charges_the_user(story_graph, tokens, media) -> None:
    first = post(story_graph, tokens["user"], [media["video"]], language="ja")
    assert first.status_code == 200, first.text
    body = first.json()
    # The documented keys, plus what the vision model sampled from the video (added).
    assert set(body) == {"english", "translation", "language", "token_usage", "sampling"}
    assert body["language"] == "ja" and body["sampling"]["frame_indices"][0] == 0
    broke = post(story_graph, tokens["user"], [media["video"]], language="ja")
    assert broke.status_code == 402


@pytest.mark.ray
@pytest.mark.slow
def test_mixed_media_is_400_over_http(story_graph, tokens, media) -> None:
    response = post(story_graph, tokens["admin"], [media["jpeg"], media["video"]])
    assert response.status_code == 400
    assert "images and a video" in response.json()["detail"]


@pytest.mark.ray
@pytest.mark.slow
def test_readiness_includes_the_story_model(story_graph: str) -> None:
    ready = httpx.get(f"{story_graph}/readyz", timeout=30)
    assert ready.status_code == 200
    assert ready.json()["components"] == {"tiny-qwen2.5-vl": True, "story:tiny-story": True}


@pytest.mark.ray
@pytest.mark.slow
async def test_story_writer_handle_refuses_media(story_graph: str) -> None:
    from ray import serve

    from serve_app.deployments.handles import domain_error

    handle = serve.get_deployment_handle(STORY_WRITER, app_name=APP)
    image = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(Exception) as info:
        await handle.generate.remote(GenerationRequest(prompt="p", images=(image,)))
    assert isinstance(domain_error(info.value), InvalidRequest)
