from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from serve_app.engines.base import GenerationRequest, SamplingParams
from serve_app.engines.profile import ModelProfile
from serve_app.engines.vllm_engine import (
    VLLMEngine,
    build_engine_kwargs,
    build_sampling_kwargs,
    build_structured_outputs,
    build_vllm_prompt,
)
from serve_app.errors import BackendUnavailable, GenerationFailed, InvalidRequest
from tests.support import fake_vllm

from .conftest import MakeVideo

METADATA_KEYS = {
    "fps",
    "total_num_frames",
    "frames_indices",
    "duration",
    "video_backend",
    "do_sample_frames",
}


@pytest.fixture(scope="module")
def processor(tiny_model_dir: Path) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture
async def engine(
    monkeypatch: pytest.MonkeyPatch, tiny_profile: ModelProfile, tiny_model_dir: Path
) -> VLLMEngine:
    fake_vllm.install(monkeypatch)
    profile = tiny_profile.model_copy(update={"backend": "vllm"})
    engine = VLLMEngine(profile, str(tiny_model_dir))
    await engine.start()
    return engine


def fake() -> fake_vllm.AsyncLLM:
    assert fake_vllm.AsyncLLM.last is not None
    return fake_vllm.AsyncLLM.last


def test_prompt_with_images(processor: Any, image: np.ndarray) -> None:
    request = GenerationRequest(
        prompt="Compare them.", images=(image, image[:28]), system="Be brief."
    )
    prompt = build_vllm_prompt(request, processor)
    assert prompt["prompt"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
        + "<|vision_start|><|image_pad|><|vision_end|>" * 2
        + "Compare them.<|im_end|>\n<|im_start|>assistant\n"
    )
    images = prompt["multi_modal_data"]["image"]
    assert [type(i) for i in images] == [Image.Image, Image.Image]
    assert [i.size for i in images] == [(84, 56), (84, 28)]
    assert "video" not in prompt["multi_modal_data"]


def test_prompt_with_video(processor: Any, make_video: MakeVideo) -> None:
    video = make_video(num_frames=4, fps=25.0, step=5)
    prompt = build_vllm_prompt(GenerationRequest(prompt="What happens?", video=video), processor)
    assert prompt["prompt"].count("<|vision_start|><|video_pad|><|vision_end|>") == 1
    [(frames, metadata)] = prompt["multi_modal_data"]["video"]
    assert frames.shape == (4, 56, 56, 3) and frames.dtype == np.uint8
    assert set(metadata) >= METADATA_KEYS
    assert metadata["do_sample_frames"] is False
    assert metadata["fps"] == 25.0
    assert metadata["frames_indices"] == [0, 5, 10, 15]
    assert metadata["total_num_frames"] == 20
    assert metadata["duration"] == pytest.approx(0.8)
    assert "image" not in prompt["multi_modal_data"]


def test_video_metadata_is_what_the_hf_processor_accepts(
    processor: Any, make_video: MakeVideo
) -> None:
    """vLLM hands the pair to the HF processor; the metadata must place frames in time."""
    video = make_video(num_frames=4, fps=30.0, step=15)  # sampled at 2 fps
    prompt = build_vllm_prompt(GenerationRequest(prompt="x", video=video), processor)
    [(frames, metadata)] = prompt["multi_modal_data"]["video"]
    metadata = dict(metadata)
    do_sample_frames = metadata.pop("do_sample_frames")
    out = processor(
        text=[prompt["prompt"]],
        videos=[frames],
        video_metadata=[metadata],
        do_sample_frames=do_sample_frames,
        return_tensors="pt",
    )
    assert out["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert out["second_per_grid_ts"].tolist() == [pytest.approx(1.0)]


def test_text_only_prompt(processor: Any) -> None:
    prompt = build_vllm_prompt(GenerationRequest(prompt="A story."), processor)
    assert set(prompt) == {"prompt"}
    assert prompt["prompt"].endswith(
        "<|im_start|>user\nA story.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_engine_kwargs(tiny_profile: ModelProfile) -> None:
    kwargs = build_engine_kwargs(tiny_profile, "/models/tiny")
    assert kwargs["model"] == "/models/tiny"
    assert kwargs["max_model_len"] == tiny_profile.max_model_len
    assert kwargs["limit_mm_per_prompt"] == {"image": 8, "video": 1}
    assert kwargs["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 12544}
    custom = tiny_profile.model_copy(
        update={
            "vllm_engine_args": {
                "limit_mm_per_prompt": {"image": 2, "video": 1},
                "gpu_memory_utilization": 0.5,
            }
        }
    )
    kwargs = build_engine_kwargs(custom, "m")
    assert kwargs["limit_mm_per_prompt"] == {"image": 2, "video": 1}
    assert kwargs["gpu_memory_utilization"] == 0.5
    text_only = build_engine_kwargs(tiny_profile.model_copy(update={"multimodal": False}), "m")
    assert "limit_mm_per_prompt" not in text_only and "mm_processor_kwargs" not in text_only


def test_sampling_kwargs_build_real_shaped_params() -> None:
    greedy = build_sampling_kwargs(SamplingParams(max_tokens=9, seed=None))
    assert greedy == {"max_tokens": 9, "temperature": 0.0, "top_p": 1.0}
    sampled = build_sampling_kwargs(
        SamplingParams(max_tokens=9, temperature=0.8, top_p=0.9, seed=3)
    )
    params = fake_vllm.SamplingParams(**sampled)  # keyword names vLLM accepts
    assert (params.max_tokens, params.temperature, params.top_p, params.top_k, params.seed) == (
        9,
        0.8,
        0.9,
        0,
        3,
    )


async def test_start_builds_async_llm_from_engine_args(
    engine: VLLMEngine, tiny_model_dir: Path
) -> None:
    args = fake().engine_args
    assert isinstance(args, fake_vllm.AsyncEngineArgs)
    assert args.model == str(tiny_model_dir)
    assert args.limit_mm_per_prompt == {"image": 8, "video": 1}
    await engine.start()  # idempotent
    assert fake_vllm.AsyncLLM.last is fake()


async def test_generate_passes_prompt_and_reports_counts(
    engine: VLLMEngine, make_video: MakeVideo
) -> None:
    fake().behaviour = fake_vllm.Behaviour(
        text=" Done. ", prompt_tokens=77, output_tokens=4, finish_reason="length"
    )
    request = GenerationRequest(
        prompt="What happens?",
        video=make_video(),
        sampling=SamplingParams(max_tokens=4),
        request_id="abc",
    )
    result = await engine.generate(request)
    assert (result.text, result.input_tokens, result.output_tokens, result.finish_reason) == (
        "Done.",
        77,
        4,
        "length",
    )
    [(prompt, params, request_id)] = fake().calls
    assert request_id.startswith("abc-")
    assert params.max_tokens == 4 and params.temperature == 0.0
    assert params.output_kind is fake_vllm.RequestOutputKind.FINAL_ONLY
    assert prompt["multi_modal_data"]["video"][0][1]["do_sample_frames"] is False


async def test_request_ids_are_unique(engine: VLLMEngine) -> None:
    request = GenerationRequest(prompt="Hi", request_id="same")
    await asyncio.gather(engine.generate(request), engine.generate(request))
    ids = [call[2] for call in fake().calls]
    assert len(set(ids)) == 2


async def test_cancellation_aborts_the_request(engine: VLLMEngine) -> None:
    fake().behaviour = fake_vllm.Behaviour(hang=True)
    task = asyncio.create_task(engine.generate(GenerationRequest(prompt="Hi", request_id="r1")))
    await fake().started_generation.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [(_, _, request_id)] = fake().calls
    assert (request_id, False) in fake().aborted


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (fake_vllm.EngineDeadError(), BackendUnavailable),
        (
            ValueError("The decoder prompt (length 99999) is longer than the maximum model length"),
            InvalidRequest,
        ),
        (fake_vllm.EngineGenerateError(), GenerationFailed),
    ],
)
async def test_errors_are_mapped(
    engine: VLLMEngine, error: Exception, expected: type[Exception]
) -> None:
    fake().behaviour = fake_vllm.Behaviour(error=error)
    with pytest.raises(expected):
        await engine.generate(GenerationRequest(prompt="Hi"))


async def test_empty_text_is_a_generation_failure(engine: VLLMEngine) -> None:
    fake().behaviour = fake_vllm.Behaviour(text="  ")
    with pytest.raises(GenerationFailed):
        await engine.generate(GenerationRequest(prompt="Hi"))


async def test_health_and_shutdown(engine: VLLMEngine) -> None:
    llm = fake()
    await engine.check_health()
    llm.health_error = fake_vllm.EngineDeadError()
    with pytest.raises(BackendUnavailable):
        await engine.check_health()
    await engine.shutdown()
    await engine.shutdown()
    assert llm.shutdown_calls == 1
    with pytest.raises(BackendUnavailable):
        await engine.check_health()
    with pytest.raises(BackendUnavailable):
        await engine.generate(GenerationRequest(prompt="Hi"))


async def test_text_only_model_rejects_media(
    monkeypatch: pytest.MonkeyPatch,
    tiny_profile: ModelProfile,
    tiny_model_dir: Path,
    image: np.ndarray,
) -> None:
    fake_vllm.install(monkeypatch)
    engine = VLLMEngine(tiny_profile.model_copy(update={"multimodal": False}), str(tiny_model_dir))
    await engine.start()
    assert fake().engine_args.limit_mm_per_prompt == {}
    with pytest.raises(InvalidRequest):
        await engine.generate(GenerationRequest(prompt="Describe.", images=(image,)))
    assert (await engine.generate(GenerationRequest(prompt="A story."))).output_tokens == 5


async def test_without_vllm_start_is_backend_unavailable(
    monkeypatch: pytest.MonkeyPatch, tiny_profile: ModelProfile
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes ``import vllm`` fail
    engine = VLLMEngine(tiny_profile)
    with pytest.raises(BackendUnavailable, match="vllm"):
        await engine.start()
    with pytest.raises(BackendUnavailable):
        await engine.generate(GenerationRequest(prompt="Hi"))


async def test_unknown_engine_args_fail_start(
    monkeypatch: pytest.MonkeyPatch, tiny_profile: ModelProfile, tiny_model_dir: Path
) -> None:
    fake_vllm.install(monkeypatch)
    profile = tiny_profile.model_copy(update={"vllm_engine_args": {"no_such_arg": 1}})
    with pytest.raises(BackendUnavailable, match="could not be started"):
        await VLLMEngine(profile, str(tiny_model_dir)).start()
    assert fake_vllm.AsyncLLM.last is None


def test_response_format_becomes_vllm_structured_outputs() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    as_schema = json.dumps({"type": "json_schema", "json_schema": {"name": "r", "schema": schema}})
    assert build_structured_outputs(None) is None
    compact = build_engine_kwargs(ModelProfile(name="m", backend="vllm", model="m"), "m")
    assert compact["structured_outputs_config"] == {
        "backend": "xgrammar",
        "disable_any_whitespace": True,
    }
    assert build_structured_outputs('{"type": "json_object"}') == {"json_object": True}
    assert build_structured_outputs(as_schema) == {"json": schema}
    with pytest.raises(InvalidRequest):
        build_structured_outputs('{"type": "json_schema", "json_schema": {"name": "r"}}')


async def test_json_response_format_reaches_vllm_as_structured_outputs(
    engine: VLLMEngine,
) -> None:
    sampling = SamplingParams(max_tokens=8, response_format='{"type": "json_object"}')
    await engine.generate(GenerationRequest(prompt="JSON please", sampling=sampling))
    [(_, params, _)] = fake().calls
    assert params.structured_outputs == fake_vllm.StructuredOutputsParams(json_object=True)
