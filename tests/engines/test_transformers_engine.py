from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import torch

from serve_app.engines.base import GenerationRequest, SamplingParams
from serve_app.engines.chat import build_messages, video_metadata
from serve_app.engines.profile import ModelProfile
from serve_app.engines.transformers_engine import (
    TransformersEngine,
    resolve_device,
    resolve_dtype,
    sampling_kwargs,
)
from serve_app.errors import BackendUnavailable, GenerationFailed, InvalidRequest, ParameterError

from .conftest import MakeVideo

GREEDY = SamplingParams(max_tokens=16, temperature=0.0)


@pytest.fixture(scope="module")
async def engine(
    tiny_profile: ModelProfile, tiny_model_dir: Path
) -> AsyncIterator[TransformersEngine]:
    engine = TransformersEngine(tiny_profile, str(tiny_model_dir))
    await engine.start()
    yield engine
    await engine.shutdown()


def prompt_length(engine: TransformersEngine, request: GenerationRequest) -> int:
    """The processor's own count of prompt tokens, visual tokens included."""
    processor = engine._processor
    text = processor.apply_chat_template(
        build_messages(request), tokenize=False, add_generation_prompt=True
    )
    kwargs: dict = {"text": [text], "return_tensors": "pt"}
    if request.images:
        kwargs["images"] = list(request.images)
    if request.video is not None:
        kwargs["videos"] = [request.video.frames]
        kwargs["video_metadata"] = [video_metadata(request.video)]
        kwargs["do_sample_frames"] = False
    return int(processor(**kwargs)["input_ids"].shape[1])


def count_token(engine: TransformersEngine, request: GenerationRequest, token: str) -> int:
    processor = engine._processor
    text = processor.apply_chat_template(
        build_messages(request), tokenize=False, add_generation_prompt=True
    )
    kwargs: dict = {"text": [text], "return_tensors": "pt"}
    if request.video is not None:
        kwargs.update(videos=[request.video.frames], do_sample_frames=False)
        kwargs["video_metadata"] = [video_metadata(request.video)]
    ids = processor(**kwargs)["input_ids"][0]
    return int((ids == processor.tokenizer.convert_tokens_to_ids(token)).sum())


async def test_one_image(engine: TransformersEngine, image: np.ndarray) -> None:
    request = GenerationRequest(prompt="Describe this image.", images=(image,), sampling=GREEDY)
    result = await engine.generate(request)
    assert result.text
    assert result.input_tokens == prompt_length(engine, request)
    assert 0 < result.output_tokens <= GREEDY.max_tokens
    assert result.finish_reason in {"stop", "length"}


async def test_several_images(engine: TransformersEngine, image: np.ndarray) -> None:
    small = image[:28, :28]
    one = GenerationRequest(prompt="Compare.", images=(image,), sampling=GREEDY)
    two = GenerationRequest(prompt="Compare.", images=(image, small), sampling=GREEDY)
    result = await engine.generate(two)
    assert result.input_tokens == prompt_length(engine, two)
    # the 28x28 image is upscaled to the 56x56 minimum: vision start/end + 4 image tokens
    assert result.input_tokens == prompt_length(engine, one) + 2 + 4


async def test_video_frames_with_metadata(
    engine: TransformersEngine, make_video: MakeVideo
) -> None:
    video = make_video(num_frames=4, height=56, width=56)
    request = GenerationRequest(prompt="What happens?", video=video, sampling=GREEDY)
    result = await engine.generate(request)
    assert result.input_tokens == prompt_length(engine, request)
    # Qwen2.5-VL: (frames / 2) * (H / 28) * (W / 28) video tokens
    assert count_token(engine, request, "<|video_pad|>") == 2 * 2 * 2
    assert 0 < result.output_tokens <= GREEDY.max_tokens


async def test_video_metadata_sets_temporal_spacing(
    engine: TransformersEngine, make_video: MakeVideo
) -> None:
    video = make_video(num_frames=4, fps=30.0, step=15)  # 2 frames per second sampled
    inputs = engine._encode([GenerationRequest(prompt="x", video=video)])
    assert inputs["second_per_grid_ts"].tolist() == [pytest.approx(1.0)]


async def test_text_only_request(engine: TransformersEngine) -> None:
    request = GenerationRequest(
        prompt="Write a short story about a cat.", system="You are a storyteller.", sampling=GREEDY
    )
    result = await engine.generate(request)
    assert result.text
    assert result.input_tokens == prompt_length(engine, request)
    assert 0 < result.output_tokens <= GREEDY.max_tokens


async def test_batch_equals_sequential_under_greedy(
    engine: TransformersEngine, image: np.ndarray, make_video: MakeVideo
) -> None:
    requests = [
        GenerationRequest(prompt="Describe this image.", images=(image,), sampling=GREEDY),
        GenerationRequest(prompt="Tell me a story.", sampling=GREEDY),
        GenerationRequest(prompt="What happens?", video=make_video(), sampling=GREEDY),
        GenerationRequest(prompt="Both?", images=(image, image[:, :56]), sampling=GREEDY),
        GenerationRequest(prompt="Short.", sampling=SamplingParams(max_tokens=3)),
    ]
    sequential = [await engine.generate(r) for r in requests]
    batched = await engine.generate_batch(requests)
    assert batched == sequential


async def test_length_finish_reason(engine: TransformersEngine, image: np.ndarray) -> None:
    request = GenerationRequest(prompt="Hi", images=(image,), sampling=SamplingParams(max_tokens=3))
    result = await engine.generate(request)
    assert (result.output_tokens, result.finish_reason) == (3, "length")


async def test_stop_at_end_of_sequence(engine: TransformersEngine) -> None:
    eos = engine._tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = engine._tokenizer.pad_token_id
    result = engine._result([40, 41, eos, pad, pad], prompt_tokens=9, max_tokens=5)
    assert (result.output_tokens, result.finish_reason, result.input_tokens) == (3, "stop", 9)


async def test_seeded_sampling_is_reproducible(engine: TransformersEngine) -> None:
    sampling = SamplingParams(max_tokens=8, temperature=1.0, top_p=0.9, seed=7)
    request = GenerationRequest(prompt="Tell me a story.", sampling=sampling)
    assert await engine.generate(request) == await engine.generate(request)


async def test_event_loop_stays_free(engine: TransformersEngine) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await engine.generate(
        GenerationRequest(prompt="A story.", sampling=SamplingParams(max_tokens=32))
    )
    task.cancel()
    assert ticks > 3


async def test_threads_are_pinned(engine: TransformersEngine) -> None:
    assert torch.get_num_threads() == 1


async def test_prompt_over_the_context_limit_is_rejected(
    tiny_profile: ModelProfile, tiny_model_dir: Path
) -> None:
    profile = tiny_profile.model_copy(update={"max_model_len": 256})
    engine = TransformersEngine(profile, str(tiny_model_dir))
    await engine.start()
    with pytest.raises(InvalidRequest, match="limit is 256"):
        await engine.generate(GenerationRequest(prompt="word " * 300))


async def test_json_response_format_is_refused_not_ignored(engine: TransformersEngine) -> None:
    fmt = '{"type": "json_object"}'
    request = GenerationRequest(
        prompt="Hi", sampling=SamplingParams(max_tokens=4, response_format=fmt)
    )
    with pytest.raises(ParameterError, match="response_format") as refused:
        await engine.generate(request)
    assert refused.value.param == "response_format"
    with pytest.raises(ParameterError, match="response_format"):
        async for _ in engine.generate_stream(request):
            pass
    await engine.check_health()


async def test_generation_errors_are_mapped(
    engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = GenerationRequest(prompt="Hi", sampling=GREEDY)

    def fail(exc: BaseException):  # type: ignore[no-untyped-def]
        def generate(*args: object, **kwargs: object) -> None:
            raise exc

        return generate

    monkeypatch.setattr(engine._model, "generate", fail(torch.cuda.OutOfMemoryError("oom")))
    with pytest.raises(BackendUnavailable):
        await engine.generate(request)
    monkeypatch.setattr(engine._model, "generate", fail(RuntimeError("shape mismatch")))
    with pytest.raises(GenerationFailed):
        await engine.generate(request)
    await engine.check_health()  # an ordinary failure does not mark the engine broken


async def test_empty_output_is_a_generation_failure(
    engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    eos = engine._tokenizer.convert_tokens_to_ids("<|im_end|>")

    def generate(input_ids: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return torch.cat([input_ids, torch.full((input_ids.shape[0], 1), eos)], dim=1)

    monkeypatch.setattr(engine._model, "generate", generate)
    request = GenerationRequest(prompt="Hi", sampling=GREEDY)
    with pytest.raises(GenerationFailed):
        await engine.generate(request)
    [result] = await engine.generate_batch([request])
    assert (result.text, result.output_tokens, result.finish_reason) == ("", 1, "stop")


async def test_not_started(tiny_profile: ModelProfile, tiny_model_dir: Path) -> None:
    engine = TransformersEngine(tiny_profile, str(tiny_model_dir))
    with pytest.raises(BackendUnavailable):
        await engine.check_health()
    with pytest.raises(BackendUnavailable):
        await engine.generate(GenerationRequest(prompt="Hi"))
    await engine.shutdown()  # idempotent, even before start


async def test_missing_model_is_backend_unavailable(
    tiny_profile: ModelProfile, tmp_path: Path
) -> None:
    engine = TransformersEngine(tiny_profile, str(tmp_path / "nothing-here"))
    with pytest.raises(BackendUnavailable) as info:
        await engine.start()
    assert str(tmp_path) not in info.value.detail  # no server paths in client messages


async def test_text_only_profile(
    tiny_profile: ModelProfile, tiny_model_dir: Path, image: np.ndarray
) -> None:
    engine = TransformersEngine(
        tiny_profile.model_copy(update={"multimodal": False}), str(tiny_model_dir)
    )
    await engine.start()
    result = await engine.generate(GenerationRequest(prompt="A story, please.", sampling=GREEDY))
    assert result.output_tokens > 0
    with pytest.raises(InvalidRequest):
        await engine.generate(GenerationRequest(prompt="Describe.", images=(image,)))
    await engine.shutdown()
    with pytest.raises(BackendUnavailable):
        await engine.check_health()


def test_device_dtype_and_sampling_helpers() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in {"cpu", "cuda"}
    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") == "auto"
    assert resolve_dtype("bfloat16", "cpu") is torch.bfloat16
    assert sampling_kwargs(SamplingParams(max_tokens=5)) == {
        "max_new_tokens": 5,
        "do_sample": False,
    }
    sampled = sampling_kwargs(SamplingParams(max_tokens=5, temperature=0.7, top_p=0.8))
    assert sampled["do_sample"] and sampled["temperature"] == 0.7 and sampled["top_p"] == 0.8


async def test_cancellation_stops_generation_and_frees_the_model(
    engine: TransformersEngine,
) -> None:
    long = GenerationRequest(prompt="A long story.", sampling=SamplingParams(max_tokens=3000))
    task = asyncio.create_task(engine.generate(long))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.perf_counter()
    await engine.generate(GenerationRequest(prompt="Hi", sampling=SamplingParams(max_tokens=2)))
    assert time.perf_counter() - started < 1.0  # 3000 tokens would take several seconds


async def test_stream_matches_generate(engine: TransformersEngine, image: np.ndarray) -> None:
    request = GenerationRequest(prompt="Hi", images=(image,), sampling=SamplingParams(max_tokens=6))
    whole = await engine.generate(request)
    deltas = [d async for d in engine.generate_stream(request)]
    assert "".join(d.text for d in deltas) == whole.text
    last = deltas[-1]
    assert (last.finish_reason, last.input_tokens, last.output_tokens) == (
        whole.finish_reason,
        whole.input_tokens,
        whole.output_tokens,
    )


async def test_closing_the_stream_stops_generating(engine: TransformersEngine) -> None:
    stream = engine.generate_stream(
        GenerationRequest(prompt="Hi", sampling=SamplingParams(max_tokens=100_000))
    )
    await anext(stream)
    started = asyncio.get_running_loop().time()
    await stream.aclose()
    # The lock is free again at once: the worker thread stopped at its next step.
    quick = GenerationRequest(prompt="Hi", sampling=SamplingParams(max_tokens=1))
    await asyncio.wait_for(engine.generate(quick), timeout=10)
    assert asyncio.get_running_loop().time() - started < 10


async def test_conversation_with_history_and_stop(engine: TransformersEngine, image) -> None:
    from serve_app.engines.base import ChatTurn, MediaSlot

    conversation = (
        ChatTurn("system", ("Be brief.",)),
        ChatTurn("user", (MediaSlot.IMAGE, "What is it?")),
        ChatTurn("assistant", ("A square.",)),
        ChatTurn("user", ("And the colour?",)),
    )
    request = GenerationRequest(
        prompt="", images=(image,), conversation=conversation, sampling=SamplingParams(max_tokens=8)
    )
    whole = await engine.generate(request)
    assert whole.input_tokens > 30
    text = whole.text
    cut = next(i for i in range(1, len(text)) if text[i] not in text[:i] and not text[i].isspace())
    stop = text[cut]
    stopped = await engine.generate(
        GenerationRequest(
            prompt="",
            images=(image,),
            conversation=conversation,
            sampling=SamplingParams(max_tokens=8, stop=(stop,)),
        )
    )
    assert (stopped.text, stopped.finish_reason) == (text[:cut].strip(), "stop")
    with pytest.raises(ValueError, match="media slots"):
        GenerationRequest(prompt="", conversation=conversation)
