"""The one orchestrator of per-frame models: detections and captions to their backends."""

from __future__ import annotations

import numpy as np

from serve_app.engines.backend import EngineBackend
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.resolved import DetectorModel, resolve_model
from serve_app.frame_models.results import FrameResult
from serve_app.frame_models.spec import ModelSpec
from serve_app.jobs.worker.frame_models import FrameModels
from tests.support.story_engines import ScriptedEngine

PROFILE = ModelProfile(name="vl", backend="openai", model="vl", max_new_tokens=8)


class RecordingDetector:
    def __init__(self) -> None:
        self.models: list[DetectorModel] = []

    async def detect(
        self, model: DetectorModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        self.models.append(model)
        width, height = original_size
        return [
            {"time": 0.0, "image": {"width": width, "height": height}, "predictions": []}
            for _ in frames
        ]


async def test_detections_go_to_the_detector_backend(catalog: FrameModelCatalog) -> None:
    detector = RecordingDetector()
    model = resolve_model(catalog, ModelSpec(model_id="face-detection"), {}, None)
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    entries = await FrameModels(detector).run(model, frames, (32, 32))
    assert detector.models == [model]
    assert [e and e["image"] for e in entries] == [{"width": 32, "height": 32}] * 3  # type: ignore[typeddict-item]


async def test_captions_are_one_request_per_frame(catalog: FrameModelCatalog) -> None:
    engine = ScriptedEngine(["a cat"])
    spec = ModelSpec(model_id="frame-captioner", inference_type="vlm")
    model = resolve_model(catalog, spec, {"vl": PROFILE}, "vl")
    models = FrameModels(RecordingDetector(), {"vl": EngineBackend(engine)})
    entries = await models.run(model, np.zeros((2, 56, 56, 3), np.uint8), (56, 56))
    assert [e and e["text"] for e in entries] == ["a cat", "a cat"]  # type: ignore[typeddict-item]
    assert list(entries[0] or {}) == ["time", "text", "input_tokens", "output_tokens"]
    assert [r.sampling.max_tokens for r in engine.requests] == [8, 8]
    assert engine.requests[0].prompt == "Describe this frame in one sentence."

    engine.error = BackendUnavailable("down")
    assert await models.run(model, np.zeros((1, 56, 56, 3), np.uint8), (56, 56)) == [None]
