"""``/v1`` on the real Ray Serve graph (CPU, tiny model) through the ``openai`` SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from serve_app.app import AppArgs, ModelEntry, build_app
from tests.chat.conftest import data_url
from tests.support.graphs import FAST_ACCOUNTS, create_api_token, tiny_profile
from tests.support.http_servers import counting_server
from tests.support.media_files import make_image, make_video

pytestmark = [pytest.mark.ray, pytest.mark.slow]

MODEL = "tiny-qwen2.5-vl"
SETTINGS = {
    "inline_media_bytes": 8_000,
    "accounts": FAST_ACCOUNTS,
    # The loopback test server stands in for a media server the operator allows.
    "chat": {"fetch": {"allow_networks": ["127.0.0.1/32"]}},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("v1-data")


@pytest.fixture(scope="module")
def tokens(data_dir: Path) -> dict[str, str]:
    settings = {"data_dir": str(data_dir), **SETTINGS}
    return {
        "admin": create_api_token(settings, "admin", admin=True)[0],
        "user": create_api_token(settings, "user", credits=15)[0],
    }


@pytest.fixture(scope="module")
def base_url(ray_serve: int, tiny_model_dir: Path, data_dir: Path, tokens) -> Iterator[str]:
    from ray import serve

    args = AppArgs(
        models=[ModelEntry(profile=tiny_profile(tiny_model_dir, max_new_tokens=256))],
        story_model=None,
        detectors_config=None,
        settings={"data_dir": str(data_dir), **SETTINGS},
    )
    serve.run(build_app(args), name="v1", route_prefix="/v1graph")
    try:
        yield f"http://127.0.0.1:{ray_serve}/v1graph/v1"
    finally:
        serve.delete("v1")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("v1-media")
    return {
        "jpeg": make_image(root / "a.jpg", "jpeg", 96, 64),
        "png": make_image(root / "b.png", "png", 64, 64),
        "video": make_video(root / "c.mp4", frames=60, width=160, height=120),
    }


def client(base_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=120)


def parts(*items: dict, text: str = "Describe.") -> list[dict]:
    return [{"role": "user", "content": [*items, {"type": "text", "text": text}]}]


def image(path: Path, mime: str = "image/jpeg") -> dict:
    return {"type": "image_url", "image_url": {"url": data_url(path, mime)}}


def test_models(base_url: str, tokens) -> None:
    assert [m.id for m in client(base_url, tokens["admin"]).models.list().data] == [MODEL]


def test_images_and_video(base_url: str, tokens, media) -> None:
    sdk = client(base_url, tokens["admin"])
    one = sdk.chat.completions.create(
        model=MODEL, messages=parts(image(media["jpeg"])), max_tokens=5
    )
    assert one.choices[0].message.content and one.usage.completion_tokens <= 5
    two = sdk.chat.completions.create(
        model=MODEL,
        messages=parts(image(media["jpeg"]), image(media["png"], "image/png")),
        max_tokens=5,
    )
    assert two.usage.prompt_tokens > one.usage.prompt_tokens
    video = {"type": "video_url", "video_url": {"url": data_url(media["video"], "video/mp4")}}
    answer = sdk.chat.completions.create(
        model=MODEL,
        messages=parts(video),
        max_tokens=5,
        extra_body={"media_io_kwargs": {"video": {"fps": 2}}},
    )
    [sampled] = answer.model_extra["sampled_media"]
    assert sampled["fps"] == pytest.approx(2.0, rel=0.05) and len(sampled["frame_indices"]) == 4


def test_video_by_http_url(base_url: str, tokens, media) -> None:
    body = media["video"].read_bytes()
    with counting_server(lambda *_: (200, {"Content-Type": "video/mp4"}, body)) as server:
        url = f"http://127.0.0.1:{server.port}/clip.mp4"
        answer = client(base_url, tokens["admin"]).chat.completions.create(
            model=MODEL,
            messages=parts({"type": "video_url", "video_url": {"url": url}}),
            max_tokens=4,
        )
    assert answer.choices[0].message.content
    assert server.requests[0][1] == "/clip.mp4"


def test_streaming(base_url: str, tokens, media) -> None:
    stream = client(base_url, tokens["admin"]).chat.completions.create(
        model=MODEL,
        messages=parts(image(media["jpeg"])),
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    assert chunks[-1].usage.completion_tokens == 6


async def test_async_streaming(base_url: str, tokens, media) -> None:
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key=tokens["admin"], max_retries=0)
    stream = await sdk.chat.completions.create(
        model=MODEL, messages=parts(image(media["png"], "image/png")), max_tokens=4, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    await sdk.close()


def test_disconnect_aborts_the_generation(base_url: str, tokens, media) -> None:
    """A client that leaves mid-stream frees the model: 256 tokens are never generated."""
    sdk = client(base_url, tokens["admin"])
    kwargs = {"model": MODEL, "messages": parts(image(media["jpeg"])), "temperature": 0}
    started = time.monotonic()
    sdk.chat.completions.create(**kwargs, max_tokens=256)
    full_s = time.monotonic() - started
    with httpx.stream(
        "POST",
        f"{base_url}/chat/completions",
        json={**kwargs, "max_tokens": 256, "stream": True},
        headers={"Authorization": f"Bearer {tokens['admin']}"},
        timeout=60,
    ) as response:
        next(response.iter_lines())
    # The model replica is free again at once (one request at a time per engine lock).
    started = time.monotonic()
    sdk.chat.completions.create(**kwargs, max_tokens=1)
    assert time.monotonic() - started < max(0.5, full_s / 2)


def test_errors_and_credits(base_url: str, tokens, media) -> None:
    paying = client(base_url, tokens["user"])
    first = paying.chat.completions.create(
        model=MODEL, messages=parts(image(media["jpeg"])), max_tokens=3
    )
    assert first.model_extra["billing"] == {"credits_charged": 10, "credits_remaining": 5}
    with pytest.raises(openai.APIStatusError) as broke:
        paying.chat.completions.create(model=MODEL, messages=parts(image(media["jpeg"])))
    assert broke.value.status_code == 402
    with pytest.raises(openai.BadRequestError) as bad:
        paying.chat.completions.create(
            model=MODEL,
            messages=parts(image(media["jpeg"])),
            response_format={"type": "json_object"},
        )
    assert bad.value.body["param"] == "response_format"
    with pytest.raises(openai.AuthenticationError):
        client(base_url, "sa_nope").models.list()


def test_concurrent_requests(base_url: str, tokens, media) -> None:
    async def run() -> list[str]:
        sdk = openai.AsyncOpenAI(base_url=base_url, api_key=tokens["admin"], max_retries=0)
        answers = await asyncio.gather(
            *(
                sdk.chat.completions.create(
                    model=MODEL, messages=parts(image(media["jpeg"])), max_tokens=3
                )
                for _ in range(4)
            )
        )
        await sdk.close()
        return [a.choices[0].message.content or "" for a in answers]

    assert all(asyncio.run(run()))
