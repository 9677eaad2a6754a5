from __future__ import annotations

import base64
import io
import socket
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from PIL import Image

from serve_app.engines.base import GenerationRequest, SamplingParams
from serve_app.engines.openai_engine import OpenAIEngine
from serve_app.engines.profile import ModelProfile, OpenAIOptions
from serve_app.errors import BackendUnavailable, GenerationFailed, InvalidRequest
from tests.support.fake_openai_server import FakeOpenAIServer, Reply

from .conftest import MakeVideo

REMOTE = "Qwen/Qwen2.5-VL-7B-Instruct"


def profile_for(base_url: str, **options: object) -> ModelProfile:
    return ModelProfile(
        name="qwen-remote",
        backend="openai",
        model=REMOTE,
        openai=OpenAIOptions(
            base_url=base_url, api_key_env="FAKE_OPENAI_KEY", max_retries=0, timeout_s=10, **options
        ),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(models=(REMOTE,)) as running:
        yield running


@pytest.fixture
async def engine(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OpenAIEngine]:
    server.reply = Reply()
    server.requests.clear()
    server.headers.clear()
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-123")
    engine = OpenAIEngine(profile_for(server.base_url))
    await engine.start()
    yield engine
    await engine.shutdown()


def decode_jpeg(data_url: str, media_type: str = "image/jpeg") -> Image.Image:
    prefix = f"data:{media_type};base64,"
    assert data_url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :])))
    assert image.format == "JPEG"
    return image


async def test_image_request_body_and_usage(
    engine: OpenAIEngine, server: FakeOpenAIServer, image: np.ndarray
) -> None:
    server.reply = Reply(
        content=" A cat. ", prompt_tokens=812, completion_tokens=3, finish_reason="length"
    )
    request = GenerationRequest(
        prompt="Describe.",
        images=(image, image[:28]),
        system="Be brief.",
        sampling=SamplingParams(max_tokens=3, temperature=0.5, top_p=0.9, seed=11),
    )
    result = await engine.generate(request)
    assert (result.text, result.input_tokens, result.output_tokens, result.finish_reason) == (
        "A cat.",
        812,
        3,
        "length",
    )
    [body] = server.requests
    assert body["model"] == REMOTE
    assert (body["max_completion_tokens"], body["temperature"], body["top_p"], body["seed"]) == (
        3,
        0.5,
        0.9,
        11,
    )
    assert "extra_body" not in body and "media_io_kwargs" not in body
    system, user = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    first, second, text = user["content"]
    assert decode_jpeg(first["image_url"]["url"]).size == (84, 56)
    assert decode_jpeg(second["image_url"]["url"]).size == (84, 28)
    assert text == {"type": "text", "text": "Describe."}
    assert server.headers[0]["authorization"] == "Bearer sk-test-123"


async def test_video_request_sends_jpeg_frames_and_timing(
    engine: OpenAIEngine, server: FakeOpenAIServer, make_video: MakeVideo
) -> None:
    video = make_video(num_frames=6, height=56, width=84, fps=30.0, step=15)
    await engine.generate(GenerationRequest(prompt="What happens?", video=video))
    [body] = server.requests
    video_part, text = body["messages"][0]["content"]
    url = video_part["video_url"]["url"]
    prefix = "data:video/jpeg;base64,"
    assert url.startswith(prefix)
    frames = url[len(prefix) :].split(",")
    assert len(frames) == 6
    for frame in frames:
        assert decode_jpeg(f"data:image/jpeg;base64,{frame}").size == (84, 56)
    assert text["text"] == "What happens?"
    # vLLM's server refuses per-request processor arguments unless told to trust them.
    assert "mm_processor_kwargs" not in body
    assert body["media_io_kwargs"]["video"] == {
        "num_frames": 6,
        "fps": 30.0,
        "frames_indices": [0, 15, 30, 45, 60, 75],
        "total_num_frames": 90,
        "duration": pytest.approx(3.0),
    }


async def test_text_only_request(engine: OpenAIEngine, server: FakeOpenAIServer) -> None:
    await engine.generate(GenerationRequest(prompt="A story."))
    assert server.requests[0]["messages"] == [{"role": "user", "content": "A story."}]


async def test_unset_key_env_sends_empty_key(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_OPENAI_KEY", raising=False)
    server.headers.clear()
    engine = OpenAIEngine(profile_for(server.base_url))
    await engine.start()
    await engine.generate(GenerationRequest(prompt="Hi"))
    assert server.headers[-1]["authorization"] == "Bearer EMPTY"
    await engine.shutdown()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(status=500), BackendUnavailable),
        (Reply(status=503), BackendUnavailable),
        (
            Reply(status=400, error_message="This model's maximum context length is 32768 tokens"),
            InvalidRequest,
        ),
        (Reply(status=400, error_message="unknown field"), GenerationFailed),
        (Reply(status=401), GenerationFailed),
        (Reply(content=""), GenerationFailed),
        (Reply(content=None), GenerationFailed),
    ],
)
async def test_failures_are_mapped(
    engine: OpenAIEngine, server: FakeOpenAIServer, reply: Reply, expected: type[Exception]
) -> None:
    server.reply = reply
    with pytest.raises(expected):
        await engine.generate(GenerationRequest(prompt="Hi"))


async def test_rate_limit_carries_retry_after(
    engine: OpenAIEngine, server: FakeOpenAIServer
) -> None:
    server.reply = Reply(status=429, headers={"retry-after": "7"})
    with pytest.raises(BackendUnavailable) as info:
        await engine.generate(GenerationRequest(prompt="Hi"))
    assert info.value.retry_after_s == 7


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_is_backend_unavailable() -> None:
    engine = OpenAIEngine(profile_for(f"http://127.0.0.1:{closed_port()}/v1"))
    await engine.start()
    with pytest.raises(BackendUnavailable):
        await engine.generate(GenerationRequest(prompt="Hi"))
    with pytest.raises(BackendUnavailable):
        await engine.check_health()
    await engine.shutdown()


async def test_health_checks_the_served_models(
    engine: OpenAIEngine, server: FakeOpenAIServer
) -> None:
    await engine.check_health()
    other = OpenAIEngine(profile_for(server.base_url, remote_model="some/other-model"))
    await other.start()
    with pytest.raises(BackendUnavailable, match="does not serve"):
        await other.check_health()
    await other.shutdown()


async def test_not_started_and_text_only(server: FakeOpenAIServer, image: np.ndarray) -> None:
    engine = OpenAIEngine(profile_for(server.base_url))
    with pytest.raises(BackendUnavailable):
        await engine.check_health()
    with pytest.raises(BackendUnavailable):
        await engine.generate(GenerationRequest(prompt="Hi"))
    text_only = OpenAIEngine(profile_for(server.base_url).model_copy(update={"multimodal": False}))
    await text_only.start()
    with pytest.raises(InvalidRequest):
        await text_only.generate(GenerationRequest(prompt="Describe.", images=(image,)))
    await text_only.shutdown()
