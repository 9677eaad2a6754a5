"""Resolving a job's model specs once: detector limits and captioner settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.engines.profile import ModelProfile
from serve_app.errors import UnknownModel
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.resolved import (
    CaptionModel,
    DetectorModel,
    detector_model,
    resolve_model,
)
from serve_app.frame_models.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ModelProfile(name="vl", backend="openai", model="vl", max_new_tokens=32)


@pytest.fixture(scope="module")
def catalog() -> FrameModelCatalog:
    return FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")


def test_detectors_merge_request_limits_into_their_options(catalog: FrameModelCatalog) -> None:
    plain = resolve_model(catalog, ModelSpec(model_id="people-detection"), {}, None)
    assert isinstance(plain, DetectorModel)
    assert (plain.model_id, plain.options.max_side) == ("people-detection", 640)
    assert (plain.confidence, plain.max_detections) == (0.0, 100)
    strict = ModelSpec(
        model_id="face-detection", inference_params={"confidence": 0.7, "max_detections": 3}
    )
    model = resolve_model(catalog, strict, {}, None)
    assert isinstance(model, DetectorModel)
    assert (model.confidence, model.max_detections) == (0.7, 3)


def test_captioners_get_their_profile_prompt_and_token_cap(catalog: FrameModelCatalog) -> None:
    spec = ModelSpec(model_id="frame-captioner", inference_type="vlm")
    model = resolve_model(catalog, spec, {"vl": PROFILE}, "vl")
    assert isinstance(model, CaptionModel)
    assert model.profile is PROFILE
    assert model.prompt == "Describe this frame in one sentence."
    assert model.max_tokens == 32  # the catalog's 48, capped by the profile
    asked = spec.model_copy(update={"inference_params": {"prompt": "Who?", "max_tokens": 5}})
    model = resolve_model(catalog, asked, {"vl": PROFILE}, "vl")
    assert isinstance(model, CaptionModel)
    assert (model.prompt, model.max_tokens) == ("Who?", 5)
    with pytest.raises(UnknownModel, match="not configured"):
        resolve_model(catalog, spec, {}, None)


def test_a_captioner_is_not_a_detector(catalog: FrameModelCatalog) -> None:
    spec = ModelSpec(model_id="frame-captioner", inference_type="vlm")
    with pytest.raises(UnknownModel, match="not an object-detection model"):
        detector_model(catalog.resolve(spec), spec)
