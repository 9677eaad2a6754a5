"""Metrics and request-id logs of the model and frame deployments, without Ray.

The deployment classes are driven in-process (plain classes) with a fake engine;
the real graph on Ray is covered by ``test_graph.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from ray import serve

from serve_app.deployments.frame_extractor import FrameExtractor
from serve_app.deployments.vision_language_model import VisionLanguageModel
from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.media.sampling import SamplingSpec
from serve_app.observability import metrics
from serve_app.pipeline.protocol import DescribeJob
from tests.support.media_files import make_image

MODEL = "fake-vl"


class CountingEngine(Engine):
    """Answers at once with fixed token counts; records batch sizes."""

    supports_batching = True

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def start(self) -> None:
        pass

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        [result] = await self.generate_batch([request])
        return result

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.batches.append(len(requests))
        await asyncio.sleep(0.01)
        return [GenerationResult("a cat", input_tokens=50, output_tokens=7) for _ in requests]

    async def check_health(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _clean_metrics() -> Iterator[None]:
    metrics.reset()
    yield
    metrics.reset()


async def construct(decorated: Any, *args: Any, **kwargs: Any) -> Any:
    """Build a deployment's class the way Ray does (async constructors included).

    The instance gets a throwaway subclass, so the deployment class itself is left as
    it was: Ray pickles it by value later in the session, and a ``@serve.batch`` queue
    used here (futures, a task) would make it unpicklable, so the subclass gets a queue
    of its own. Engines are closed with :func:`close` (the class's explicit shutdown).
    """
    base = decorated
    members: dict[str, Any] = {}
    batched = getattr(base, "_generate_batched", None)
    if batched is not None:
        members["_generate_batched"] = serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)(
            batched.__wrapped__
        )
    cls = type(base.__name__, (base,), members)
    instance = cls.__new__(cls)
    init = instance.__init__(*args, **kwargs)
    if asyncio.iscoroutine(init):
        await init
    return instance


async def close(model: Any) -> None:
    await model.shutdown()


def video_batch(frames: int = 4) -> FrameBatch:
    return FrameBatch(
        kind=MediaKind.VIDEO,
        frames=np.zeros((frames, 56, 84, 3), dtype=np.uint8),
        frame_indices=tuple(range(frames)),
        timestamps=tuple(float(i) for i in range(frames)),
        source_fps=1.0,
        total_frames=frames,
        duration_s=float(frames),
    )


def job(request_id: str) -> DescribeJob:
    return DescribeJob(
        media=b"",
        prompt="What happens?",
        model=MODEL,
        spec=SamplingSpec(interval=1),
        request_id=request_id,
    )


@pytest.fixture
def replica_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``@serve.batch`` and the deployment read from a replica's context."""
    from ray import serve

    context = SimpleNamespace(
        deployment="VisionLanguageModel2",
        _deployment_config=SimpleNamespace(max_ongoing_requests=16),
    )
    monkeypatch.setattr(serve, "get_replica_context", lambda: context)


async def test_model_records_tokens_latency_and_logs_request_ids(
    capsys, tmp_path, replica_context
) -> None:
    engine = CountingEngine()
    profile = ModelProfile(name=MODEL, backend="transformers", model="unused", max_new_tokens=8)
    model = await construct(
        VisionLanguageModel, lambda: engine, profile, max_batch_size=4, log_json=True
    )
    try:
        results = await asyncio.gather(
            *(model.describe(video_batch(), job(f"r{i}")) for i in range(4))
        )
    finally:
        await close(model)

    assert [r.generation.text for r in results] == ["a cat"] * 4
    assert sum(engine.batches) == 4 and max(engine.batches) > 1  # batched
    assert metrics.INPUT_TOKENS.value(model=MODEL) == 200
    assert metrics.GENERATED_TOKENS.value(model=MODEL) == 28
    # 4 frames of 56x84: 2 frame pairs x (2 x 3) cells, per request
    assert metrics.VISUAL_TOKENS.value(model=MODEL, kind="video") == 4 * 12
    assert metrics.MODEL_LATENCY.count(model=MODEL) == 4
    deployment = "VisionLanguageModel2"  # the replica's own name
    assert metrics.IN_FLIGHT.value(deployment=deployment, model=MODEL) == 0
    assert metrics.QUEUE_DEPTH.value(deployment=deployment, model=MODEL) == 0

    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    generated = [e for e in logged if e["message"] == "generated"]
    assert sorted(e["request_id"] for e in generated) == ["r0", "r1", "r2", "r3"]
    assert all(e["output_tokens"] == 7 and e["model"] == MODEL for e in generated)


async def test_model_errors_are_counted(tmp_path, replica_context) -> None:
    class Broken(CountingEngine):
        async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Any]:
            raise TimeoutError

    profile = ModelProfile(name=MODEL, backend="transformers", model="unused")
    model = await construct(VisionLanguageModel, Broken, profile, max_batch_size=1)
    with pytest.raises(TimeoutError):
        await model.generate(GenerationRequest(prompt="hi"))
    await close(model)
    assert metrics.MODEL_ERRORS.value(model=MODEL, error="TimeoutError") == 1
    assert metrics.IN_FLIGHT.value(deployment="VisionLanguageModel2", model=MODEL) == 0


async def test_frame_extractor_counts_frames(tmp_path) -> None:
    image = make_image(tmp_path / "a.png", "png", 96, 64)
    extractor = await construct(FrameExtractor, MediaLimits())
    profile = ModelProfile(name=MODEL, backend="transformers", model="unused")
    batch = await extractor.extract(
        image.read_bytes(), SamplingSpec(interval=1), profile, request_id="x"
    )
    assert batch.num_frames == 1
    assert metrics.FRAMES_DECODED.value(kind="image") == 1
