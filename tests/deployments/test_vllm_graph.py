"""The real Ray Serve graph with the vLLM backend (its CPU build) and the tiny model.

One vLLM engine per replica: ``VisionLanguageModel`` (1 replica) describes images and
videos, ``StoryWriter`` (1 replica) writes stories, both on
``configs/models/tiny-qwen2.5-vl-vllm-cpu.yaml``. The app runs once for this module
(``vllm_graph`` at ``/vllm-graph``) on the session's Ray cluster.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from serve_app.app import STORY_WRITER, AppArgs, ModelEntry, build_graph
from tests.support.graphs import FAST_ACCOUNTS, create_api_token
from tests.support.media_files import make_image, make_video
from tests.support.openai_streams import choices_of
from tests.support.vllm_cpu import PROJECT_ROOT, VLLM_ENV, vllm_profile

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.ray,
    pytest.mark.slow,
    # vLLM's shutdown leaves its ZeroMQ context to the garbage collector.
    pytest.mark.filterwarnings("ignore:Unclosed context <zmq.Context:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <function Context.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

APP, PREFIX = "vllm_graph", "/vllm-graph"
SETTINGS: dict[str, Any] = {
    "inline_media_bytes": 8_000,
    "accounts": FAST_ACCOUNTS,
    "story": {"max_video_frames": 4},
}
#: Start time and HTTP latencies (test-artifacts/vllm-graph-timings.json).
TIMINGS: dict[str, Any] = {}
SMALL = {"num_cpus": 0.1}
#: vLLM's settings reach each model replica (and the engine-core process it starts).
VLLM_REPLICA = {"ray_actor_options": {**SMALL, "runtime_env": {"env_vars": VLLM_ENV}}}
OPTIONS = {
    "Ingress": {"ray_actor_options": SMALL},
    "FrameExtractor": {"ray_actor_options": SMALL},
    "VisionLanguageModel": {**VLLM_REPLICA, "num_replicas": 1},
    STORY_WRITER: {**VLLM_REPLICA, "num_replicas": 1},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vllm-graph")


@pytest.fixture(scope="module")
def token(data_dir: Path) -> str:
    return create_api_token({"data_dir": str(data_dir), **SETTINGS}, "admin", admin=True)[0]


@pytest.fixture(scope="module")
def vllm_graph(ray_serve: int, tiny_model_dir: Path, data_dir: Path, token: str) -> Iterator[str]:
    from ray import serve

    args = AppArgs(
        models=[ModelEntry(profile=vllm_profile(tiny_model_dir, max_new_tokens=16))],
        story_model=ModelEntry(
            profile=vllm_profile(tiny_model_dir, "tiny-story", multimodal=False)
        ),
        detectors_config=None,
        settings={"data_dir": str(data_dir), **SETTINGS},
    )
    started = time.perf_counter()
    serve.run(build_graph(args, OPTIONS), name=APP, route_prefix=PREFIX)
    TIMINGS["graph_start_s"] = round(time.perf_counter() - started, 2)
    try:
        yield f"http://127.0.0.1:{ray_serve}{PREFIX}"
    finally:
        serve.delete(APP)
        out = PROJECT_ROOT / "test-artifacts" / "vllm-graph-timings.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(TIMINGS, indent=2, sort_keys=True))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vllm-media")
    return {
        "jpeg": make_image(root / "a.jpg", "jpeg", 96, 64),
        "png": make_image(root / "b.png", "png", 64, 96),
        "video": make_video(root / "clip.mp4", frames=90, width=160, height=120),
    }


def analyze(url: str, token: str, path: Path, **fields: str) -> httpx.Response:
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/api/analyze",
        files={"file": (path.name, path.read_bytes())},
        data=fields,
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    )
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    TIMINGS.setdefault(f"analyze_{path.suffix[1:]}_ms", []).append(elapsed_ms)
    return response


def test_ready_with_both_vllm_models(vllm_graph: str) -> None:
    ready = httpx.get(f"{vllm_graph}/readyz", timeout=60)
    assert ready.status_code == 200, ready.text
    assert ready.json()["components"] == {"tiny-qwen2.5-vl": True, "story:tiny-story": True}


def test_image_is_described(vllm_graph: str, token: str, media: dict[str, Path]) -> None:
    for _ in range(3):  # the figures use all three
        response = analyze(vllm_graph, token, media["jpeg"])
        assert response.status_code == 200, response.text
        assert response.json()["result"].strip()


def test_video_is_described(vllm_graph: str, token: str, media: dict[str, Path]) -> None:
    for _ in range(2):
        response = analyze(vllm_graph, token, media["video"], interval="30", prompt="What?")
        assert response.status_code == 200, response.text
        assert response.json()["result"].strip()


def test_story_from_images(vllm_graph: str, token: str, media: dict[str, Path]) -> None:
    files = [("files", (p.name, p.read_bytes())) for p in (media["jpeg"], media["png"])]
    response = httpx.post(
        f"{vllm_graph}/analyze/",
        files=files,
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["english"].strip() and body["thai"].strip()
    usage = body["token_usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0


def v1_client(url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, timeout=300)


def image_message(path: Path, text: str) -> dict[str, Any]:
    url = f"data:image/jpeg;base64,{base64.b64encode(path.read_bytes()).decode()}"
    return {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": text},
        ],
    }


def test_v1_streams_from_vllm_with_the_openai_sdk(
    vllm_graph: str, token: str, media: dict[str, Path]
) -> None:
    started = time.perf_counter()
    stream = v1_client(vllm_graph, token).chat.completions.create(
        model="tiny-qwen2.5-vl",
        messages=[image_message(media["jpeg"], "What is this?")],
        max_tokens=8,
        n=2,
        seed=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    TIMINGS["v1_stream_n2_ms"] = round((time.perf_counter() - started) * 1000, 1)
    assert [c.index for c in chunks[0].choices] == [0, 1]
    texts, finished = choices_of(chunks)
    assert sorted(finished) == [0, 1] and sorted(texts) == [0, 1]
    assert all(t.strip() for t in texts.values())
    usage = chunks[-1].usage
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 16


def test_v1_json_output_on_vllm(vllm_graph: str, token: str, media: dict[str, Path]) -> None:
    schema = {
        "type": "object",
        "properties": {"person": {"type": "boolean"}},
        "required": ["person"],
        "additionalProperties": False,
    }
    client = v1_client(vllm_graph, token)
    answer = client.chat.completions.create(
        model="tiny-qwen2.5-vl",
        messages=[image_message(media["jpeg"], "Is there a person? Answer in JSON.")],
        max_tokens=16,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        },
    )
    TIMINGS["v1_json_answer"] = answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    parsed = json.loads(answer.choices[0].message.content)
    assert isinstance(parsed, dict) and set(parsed) == {"person"}
    assert isinstance(parsed["person"], bool)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="tiny-story",
            messages=[image_message(media["jpeg"], "A story?")],
        )
    assert refused.value.body["param"] == "messages[0].content[0]"
