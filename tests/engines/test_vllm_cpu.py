"""``VLLMEngine`` on real vLLM (its CPU build) with the tiny Qwen2.5-VL.

Marked ``vllm``: it runs in ``.venv-vllm`` (scripts/test_vllm.sh) and skips, saying why,
where vLLM cannot be imported. One engine for the whole session: ``AsyncLLM`` in this
process, its engine core in one child process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``
keeps the model worker inside that child). vLLM's OpenAI server runs once for this
module. The engine's shutdown is the last test. Start times, latencies and RSS go to
``test-artifacts/vllm-cpu-timings.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import openai
import psutil
import pytest
from PIL import Image

from serve_app.engines.base import GenerationRequest, SamplingParams
from serve_app.engines.chat import sampled_fps, video_metadata
from serve_app.engines.jpeg import encode_jpeg
from serve_app.engines.openai_engine import OpenAIEngine, build_extra_body, build_openai_messages
from serve_app.engines.profile import ModelProfile, OpenAIOptions
from serve_app.engines.vllm_engine import VLLMEngine, build_vllm_prompt, render_prompt
from serve_app.errors import BackendUnavailable, InvalidRequest
from tests.support.vllm_cpu import PROJECT_ROOT, apply_vllm_env, openai_server, vllm_profile

from .conftest import MakeVideo

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    # vLLM hands the engine's mm_processor_kwargs (min_pixels, max_pixels) to the Qwen2-VL
    # processors, which transformers 5.19 deprecates; for vLLM to change, not the tests.
    pytest.mark.filterwarnings("ignore:Passing `min_pixels` and `max_pixels`:FutureWarning"),
    # vLLM's shutdown leaves its ZeroMQ context to the garbage collector.
    pytest.mark.filterwarnings("ignore:Unclosed context <zmq.Context:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <function Context.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

#: What the session measured (written out when the engine shuts down).
TIMINGS: dict[str, Any] = {}


#: The engine-core processes the session's engine started (its children at start).
ENGINE_CORE_PIDS: list[int] = []


def rss_mib() -> dict[str, int]:
    """RSS in MiB of this process (vLLM's front end) and of the engine's core process."""
    core = 0
    for pid in ENGINE_CORE_PIDS:
        with contextlib.suppress(psutil.NoSuchProcess):
            core += psutil.Process(pid).memory_info().rss
    return {"frontend": psutil.Process().memory_info().rss >> 20, "engine_core": core >> 20}


@pytest.fixture(scope="session")
def timings() -> Iterator[dict[str, Any]]:
    yield TIMINGS
    out = PROJECT_ROOT / "test-artifacts" / "vllm-cpu-timings.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(TIMINGS, indent=2, sort_keys=True))


@pytest.fixture(scope="session")
async def vllm_engine(tiny_model_dir: Path, timings: dict[str, Any]) -> AsyncIterator[VLLMEngine]:
    apply_vllm_env()
    engine = VLLMEngine(vllm_profile(tiny_model_dir), str(tiny_model_dir))
    started = time.perf_counter()
    await engine.start()
    timings["engine_start_s"] = round(time.perf_counter() - started, 2)
    ENGINE_CORE_PIDS.extend(p.pid for p in psutil.Process().children(recursive=True))
    timings["rss_mib_after_start"] = rss_mib()
    yield engine
    await engine.shutdown()


async def timed(engine: VLLMEngine, name: str, request: GenerationRequest) -> Any:
    started = time.perf_counter()
    result = await engine.generate(request)
    TIMINGS.setdefault(f"{name}_ms", []).append(round((time.perf_counter() - started) * 1000, 1))
    return result


def images(count: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(count)
    return tuple(rng.integers(0, 256, (56, 84, 3), dtype=np.uint8) for _ in range(count))


# -- inputs ---------------------------------------------------------------------------


async def test_one_image(vllm_engine: VLLMEngine) -> None:
    request = GenerationRequest(
        prompt="Describe the picture.", images=images(1), sampling=SamplingParams(max_tokens=16)
    )
    for _ in range(3):  # the first call warms vLLM's processor; the figures use all three
        result = await timed(vllm_engine, "image", request)
    assert result.text
    assert 0 < result.output_tokens <= 16
    assert result.finish_reason in {"stop", "length"}


async def test_several_images_each_add_their_visual_tokens(vllm_engine: VLLMEngine) -> None:
    one = await vllm_engine.generate(GenerationRequest(prompt="Compare.", images=images(1)))
    three = await vllm_engine.generate(GenerationRequest(prompt="Compare.", images=images(3)))
    assert three.text
    # A 56x84 frame is 6 visual tokens between <|vision_start|> and <|vision_end|>.
    assert three.input_tokens - one.input_tokens == 2 * (6 + 2)


def sent_requests(llm: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ``EngineCoreRequest`` objects ``AsyncLLM`` hands to its engine-core process."""
    sent: list[Any] = []
    real = llm.engine_core.add_request_async

    async def spy(request: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(request)
        return await real(request, *args, **kwargs)

    monkeypatch.setattr(llm.engine_core, "add_request_async", spy)
    return sent


@pytest.mark.parametrize(("fps", "step"), [(25.0, 5), (30.0, 15)])
async def test_video_frame_indices_and_fps_reach_the_model(
    vllm_engine: VLLMEngine,
    make_video: MakeVideo,
    monkeypatch: pytest.MonkeyPatch,
    fps: float,
    step: int,
) -> None:
    from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VLForConditionalGeneration

    llm = vllm_engine._engine
    sent = sent_requests(llm, monkeypatch)
    video = make_video(num_frames=4, fps=fps, step=step)
    request = GenerationRequest(prompt="What happens?", video=video)
    result = await timed(vllm_engine, "video", request)
    assert result.text
    [core_request] = sent
    [feature] = core_request.mm_features
    assert feature.modality == "video" and feature.data is not None
    # 4 frames of 56x56: 2 temporal patches of 4x4 patches (merged 2x2 -> 8 tokens).
    assert feature.data["video_grid_thw"].data.tolist() == [2, 4, 4]
    # The model's own code turns the request's data into its rotary time axis.
    model = SimpleNamespace(config=llm.model_config.hf_config)
    [(_, grid_t, grid_h, grid_w, t_factor)] = list(
        Qwen2_5_VLForConditionalGeneration.iter_mm_grid_thw(model, core_request.mm_features)
    )
    assert (grid_t, grid_h, grid_w) == (2, 2, 2)
    # Sampled at len(indices) / total * fps: 5 fps (every 5th of 25) or 2 fps (15th of 30).
    rate = sampled_fps(video_metadata(video))
    assert rate == pytest.approx(fps / step)
    tokens_per_second = 2  # the tiny model's vision_config
    assert t_factor == pytest.approx(2 / rate * tokens_per_second)  # temporal patch of 2


async def test_text_only(vllm_engine: VLLMEngine) -> None:
    result = await vllm_engine.generate(GenerationRequest(prompt="Tell me a story."))
    assert result.text and result.input_tokens > 0


async def test_sampling_parameters_reach_vllm(vllm_engine: VLLMEngine) -> None:
    def request(**sampling: Any) -> GenerationRequest:
        return GenerationRequest(prompt="Once upon a time", sampling=SamplingParams(**sampling))

    short = await vllm_engine.generate(request(max_tokens=3))
    assert short.output_tokens <= 3
    assert short.output_tokens == 3 or short.finish_reason == "stop"
    greedy = [await vllm_engine.generate(request(max_tokens=12)) for _ in range(2)]
    assert greedy[0].text == greedy[1].text
    seeded = [
        await vllm_engine.generate(request(max_tokens=12, temperature=1.0, top_p=0.9, seed=7))
        for _ in range(2)
    ]
    assert seeded[0].text == seeded[1].text


async def test_too_many_images_is_the_clients_error(vllm_engine: VLLMEngine) -> None:
    with pytest.raises(InvalidRequest, match="the model rejected the input"):
        await vllm_engine.generate(GenerationRequest(prompt="All of them.", images=images(9)))


# -- lifecycle ------------------------------------------------------------------------


async def wait_idle(engine: Any, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while engine.output_processor.get_num_unfinished_requests() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert engine.output_processor.get_num_unfinished_requests() == 0


async def test_cancel_aborts_in_vllm_and_the_next_request_succeeds(
    vllm_engine: VLLMEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = vllm_engine._engine
    aborted: list[str] = []
    real_abort = llm.abort

    async def abort(request_id: Any, *args: Any, **kwargs: Any) -> None:
        aborted.append(str(request_id))
        await real_abort(request_id, *args, **kwargs)

    monkeypatch.setattr(llm, "abort", abort)
    long = GenerationRequest(
        prompt="Write a long story.", request_id="cancel-me", sampling=SamplingParams(1500)
    )
    task = asyncio.create_task(vllm_engine.generate(long))
    while not llm.output_processor.get_num_unfinished_requests():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # decoding
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert aborted and all(rid.startswith("cancel-me-") for rid in aborted)
    await wait_idle(llm)
    after = await vllm_engine.generate(GenerationRequest(prompt="Again.", images=images(1)))
    assert after.text


async def test_health(vllm_engine: VLLMEngine) -> None:
    await vllm_engine.check_health()
    assert not vllm_engine._engine.errored


async def test_paused_engine_is_retryable_not_a_generation_failure(
    vllm_engine: VLLMEngine,
) -> None:
    """``pause_generation`` (weight updates, draining) aborts in-flight requests in vLLM."""
    llm = vllm_engine._engine
    long = GenerationRequest(prompt="Write a long story.", sampling=SamplingParams(1500))
    task = asyncio.create_task(vllm_engine.generate(long))
    while not llm.output_processor.get_num_unfinished_requests():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    await llm.pause_generation(mode="abort")
    try:
        with pytest.raises(BackendUnavailable) as info:
            await task
    finally:
        await llm.resume_generation()
    assert info.value.retry_after_s > 0
    assert (await vllm_engine.generate(GenerationRequest(prompt="Resumed."))).text


async def test_multimodal_cache_miss_is_retryable(vllm_engine: VLLMEngine) -> None:
    """vLLM ends a request with ``finish_reason="error"`` when its front end's multimodal
    cache believes the engine core holds an item that it does not (here: an image
    rendered but never sent); resending is the cure vLLM documents."""
    image = np.random.default_rng(42).integers(0, 256, (56, 84, 3), dtype=np.uint8)
    request = GenerationRequest(prompt="Once more.", images=(image,))
    render_prompt(vllm_engine._engine, build_vllm_prompt(request, vllm_engine._processor))
    with pytest.raises(BackendUnavailable, match=r"ended the request \(error\)") as info:
        await vllm_engine.generate(request)
    assert info.value.retry_after_s > 0
    assert (await vllm_engine.generate(request)).text


async def test_retryable_request_error_is_503_with_retry_after(
    vllm_engine: VLLMEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """vLLM's ``RetryableRequestError`` from ``generate``, through the real HTTP app."""
    from vllm.exceptions import RetryableRequestError

    from serve_app.accounts.context import open_accounts
    from serve_app.accounts.settings import AccountSettings
    from serve_app.accounts.users import create_user
    from serve_app.config import Settings
    from serve_app.http.app import create_app
    from serve_app.pipeline.describe import DescribePipeline
    from tests.support.media_files import make_image

    llm = vllm_engine._engine
    real_generate = llm.generate

    async def refuse_once(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        # As 0.33 does for a request the engine ended with a retryable error.
        monkeypatch.setattr(llm, "generate", real_generate)
        async for _ in real_generate(*args, **kwargs):
            pass
        raise RetryableRequestError("engine is paused; retry")
        yield  # an async generator, like AsyncLLM.generate

    monkeypatch.setattr(llm, "generate", refuse_once)
    profile = vllm_engine._profile
    settings = Settings(
        data_dir=tmp_path / "data",
        accounts=AccountSettings(argon2_time_cost=1, argon2_memory_kib=8),
    )
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, vllm_engine)}, default_model=profile.name, limits=settings.media
    )
    accounts = open_accounts(settings)
    admin = create_user(accounts.database, accounts.passwords, "admin", "admin-pass", is_admin=True)
    token = accounts.tokens.create(admin.id, "tests").token
    app = create_app(pipeline, settings, accounts)
    jpeg = make_image(tmp_path / "a.jpg", "jpeg", 96, 64)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def analyze() -> httpx.Response:
                return await client.post(
                    "/api/analyze",
                    files={"file": ("a.jpg", jpeg.read_bytes())},
                    headers={"Authorization": f"Bearer {token}"},
                )

            refused = await analyze()
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["retry-after"]) >= 1
            assert "retry" in refused.json()["detail"]
            answered = await analyze()
            assert answered.status_code == 200, answered.text
    finally:
        accounts.close()


# -- vLLM's OpenAI-compatible server under OpenAIEngine -------------------------------


@pytest.fixture(scope="module")
def vllm_server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, timings: dict[str, Any]
) -> Iterator[str]:
    """``python -m vllm.entrypoints.openai.api_server`` on a free loopback port, once.

    Module-scoped (only this module uses it), so its ~3 GB are freed before the Serve
    graph's replicas start.
    """
    from tests.conftest import free_port

    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    started = time.perf_counter()
    with openai_server(vllm_profile(tiny_model_dir), tiny_model_dir, free_port(), log) as url:
        timings["server_start_s"] = round(time.perf_counter() - started, 2)
        yield url


@pytest.fixture(scope="module")
async def openai_engine(vllm_server: str) -> AsyncIterator[OpenAIEngine]:
    profile = ModelProfile(
        name="tiny-qwen2.5-vl",
        backend="openai",
        model="tiny-qwen2.5-vl",
        max_new_tokens=16,
        openai=OpenAIOptions(base_url=vllm_server, timeout_s=120, max_retries=0),
    )
    engine = OpenAIEngine(profile)
    await engine.start()
    yield engine
    await engine.shutdown()


async def test_server_describes_images(openai_engine: OpenAIEngine) -> None:
    await openai_engine.check_health()
    one = await openai_engine.generate(GenerationRequest(prompt="Compare.", images=images(1)))
    three = await openai_engine.generate(GenerationRequest(prompt="Compare.", images=images(3)))
    assert one.text and three.text
    assert three.input_tokens - one.input_tokens == 2 * (6 + 2)


async def test_server_describes_a_video(openai_engine: OpenAIEngine, make_video: MakeVideo) -> None:
    video = make_video(num_frames=4, fps=25.0, step=5)
    started = time.perf_counter()
    result = await openai_engine.generate(GenerationRequest(prompt="What happens?", video=video))
    TIMINGS.setdefault("server_video_ms", []).append(
        round((time.perf_counter() - started) * 1000, 1)
    )
    assert result.text
    text_only = await openai_engine.generate(GenerationRequest(prompt="What happens?"))
    assert result.input_tokens - text_only.input_tokens == 8 + 2  # 2x2x2 merged patches


#: How far two runs of the same input may differ in a log-probability (float32, CPU).
TOLERANCE = 2e-5


def jpeg_round_trip(frames: np.ndarray) -> np.ndarray:
    """The frames as the server decodes them from the engine's JPEG data URL."""
    return np.stack([np.asarray(Image.open(io.BytesIO(encode_jpeg(f, 90)))) for f in frames])


async def first_token_logprobs_in_process(
    engine: VLLMEngine, request: GenerationRequest, metadata: dict[str, Any]
) -> list[float]:
    """The top-5 log-probabilities of the first token, ``metadata`` as the video's timing."""
    from vllm import SamplingParams as VllmSamplingParams

    assert request.video is not None
    prompt = build_vllm_prompt(request, engine._processor)
    frames = jpeg_round_trip(request.video.frames)
    prompt["multi_modal_data"]["video"] = [(frames, {**metadata, "do_sample_frames": False})]
    llm = engine._engine
    engine_input = render_prompt(llm, prompt)
    params = VllmSamplingParams(max_tokens=1, temperature=0.0, logprobs=5)
    final = None
    async for output in llm.generate(engine_input, params, f"ref-{time.monotonic_ns()}"):
        final = output
    assert final is not None
    [top] = final.outputs[0].logprobs
    return sorted((lp.logprob for lp in top.values()), reverse=True)[:5]


async def first_token_logprobs_from_server(
    url: str, request: GenerationRequest, extra_body: dict[str, Any]
) -> tuple[list[float], int]:
    async with openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0) as client:
        response = await client.chat.completions.create(
            model="tiny-qwen2.5-vl",
            messages=build_openai_messages(request, 90),  # type: ignore[arg-type]
            max_completion_tokens=1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=5,
            extra_body=extra_body,
        )
    content = response.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None
    values = sorted((t.logprob for t in content[0].top_logprobs), reverse=True)[:5]
    assert response.usage is not None
    return values, response.usage.prompt_tokens


async def test_server_places_the_sampled_frames_at_their_true_times(
    vllm_server: str, vllm_engine: VLLMEngine, make_video: MakeVideo
) -> None:
    """The server's video form: comma-joined JPEG frames plus ``media_io_kwargs.video``.

    vLLM's server builds the video's metadata (source fps, frame indices, total frames,
    duration) from ``media_io_kwargs``; Qwen2.5-VL's time axis is 2 / sampled fps per
    temporal patch. The server's first-token log-probabilities equal the in-process
    engine's for the same decoded frames with the true metadata (whose time axis
    test_video_frame_indices_and_fps_reach_the_model checks), and differ from those for
    the same frames read as consecutive ones.
    """
    # Every 15th frame of 30 fps: 2 fps, 1 s per temporal patch, rotary time positions
    # 0, 2, 4, 6 (tokens_per_second 2); read as consecutive frames: 30 fps, all at 0.
    video = make_video(num_frames=8, fps=30.0, step=15)
    request = GenerationRequest(prompt="What happens?", video=video)
    true_meta = video_metadata(video)
    consecutive = {**true_meta, "frames_indices": list(range(8)), "total_num_frames": 8}
    consecutive["duration"] = 8 / 30.0

    reference = await first_token_logprobs_in_process(vllm_engine, request, true_meta)
    as_consecutive = await first_token_logprobs_in_process(vllm_engine, request, consecutive)
    timing_effect = max(abs(a - b) for a, b in zip(reference, as_consecutive, strict=True))
    TIMINGS["video_timing_logprob_effect"] = timing_effect
    assert timing_effect > 10 * TOLERANCE, (reference, as_consecutive)

    sent = build_extra_body(request)
    assert sent is not None
    assert set(sent) == {"media_io_kwargs"}
    served, prompt_tokens = await first_token_logprobs_from_server(vllm_server, request, sent)
    TIMINGS["server_vs_in_process_logprob_difference"] = max(
        abs(a - b) for a, b in zip(served, reference, strict=True)
    )
    assert served == pytest.approx(reference, abs=TOLERANCE)
    assert prompt_tokens > 16
    # Without the timing the server reads the frames as consecutive frames at 1 fps.
    bare, _ = await first_token_logprobs_from_server(vllm_server, request, {})
    assert bare != pytest.approx(reference, abs=TOLERANCE)


async def test_shutdown(vllm_engine: VLLMEngine, timings: dict[str, Any]) -> None:
    """Last in this module: the session's engine stops, and says so afterwards."""
    timings["rss_mib_before_shutdown"] = rss_mib()
    started = time.perf_counter()
    await vllm_engine.shutdown()
    timings["engine_shutdown_s"] = round(time.perf_counter() - started, 2)
    with pytest.raises(BackendUnavailable, match="not started"):
        await vllm_engine.generate(GenerationRequest(prompt="x"))
    with pytest.raises(BackendUnavailable, match="not started"):
        await vllm_engine.check_health()
    await vllm_engine.shutdown()  # idempotent
