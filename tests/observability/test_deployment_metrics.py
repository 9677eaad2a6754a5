"""Metrics the Detector and VisionLanguageModel deployments record, without Ray.

The classes are driven in process (plain classes): per-model latency of detector
models, and visual tokens of ready-made requests (a job's frame captions).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from serve_app.deployments.detector import Detector
from serve_app.deployments.vision_language_model import VisionLanguageModel
from serve_app.engines.base import GenerationRequest
from serve_app.engines.profile import ModelProfile
from serve_app.errors import UnknownModel
from serve_app.frame_models.catalog import DetectionOptions, FrameModelCatalog
from serve_app.frame_models.resolved import DetectorModel, detector_model
from serve_app.frame_models.spec import ModelSpec
from serve_app.observability import metrics
from tests.support.story_engines import ScriptedEngine

CATALOG = Path(__file__).resolve().parents[2] / "configs" / "detectors.yaml"


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    metrics.reset()
    yield
    metrics.reset()


async def test_detections_are_timed_per_model() -> None:
    catalog = FrameModelCatalog.from_yaml(CATALOG)
    detector = Detector(catalog, cv_threads=1)
    frames = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    face = ModelSpec(model_id="face-detection")
    results = await detector.detect(detector_model(catalog.resolve(face), face), frames, (64, 64))
    assert len(results) == 2
    assert metrics.MODEL_LATENCY.count(model="face-detection") == 1
    assert metrics.MODEL_LATENCY.value(model="face-detection") > 0
    assert metrics.IN_FLIGHT.value(deployment="Detector", model="face-detection") == 0

    with pytest.raises(UnknownModel):  # a captioning model is not a detector
        captioner = catalog.resolve(ModelSpec(model_id="frame-captioner", inference_type="vlm"))
        as_detector = DetectorModel(captioner, DetectionOptions(), 0.0, 1)
        await detector.detect(as_detector, frames, (64, 64))
    assert metrics.MODEL_ERRORS.value(model="frame-captioner", error="UnknownModel") == 1


async def test_captions_count_their_visual_tokens() -> None:
    profile = ModelProfile(name="vl", backend="openai", model="vl", max_new_tokens=8)
    engine = ScriptedEngine(["a cat"])
    model = await VisionLanguageModel.create(lambda: engine, profile)
    try:
        image = np.zeros((56, 84, 3), dtype=np.uint8)  # 2 x 3 cells of 28 px
        result = await model.generate(GenerationRequest(prompt="Caption.", images=(image,)))
        assert result.text == "a cat"
        assert metrics.VISUAL_TOKENS.value(model="vl", kind="image") == 6
        assert metrics.GENERATED_TOKENS.value(model="vl") == 3
        await model.generate(GenerationRequest(prompt="Text only."))
        assert metrics.VISUAL_TOKENS.value(model="vl", kind="image") == 6
        assert metrics.MODEL_LATENCY.count(model="vl") == 2
    finally:
        await model.shutdown()
