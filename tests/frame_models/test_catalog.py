"""The model catalog: loading, validation, resolving requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.errors import InvalidRequest, UnknownModel
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.spec import ModelSpec
from serve_app.jobs.spec import JobRequest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def catalog() -> FrameModelCatalog:
    return FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")


def test_the_shipped_catalog_loads(catalog: FrameModelCatalog) -> None:
    ids = {(m.model_id, m.implementation) for m in catalog.models}
    assert {
        ("face-detection", "opencv-haar"),
        ("people-detection", "opencv-hog"),
        ("frame-captioner", "vlm"),
    } <= ids
    assert catalog.base_dir == ROOT / "configs"


def test_versions_resolve_and_default_to_the_highest() -> None:
    catalog = FrameModelCatalog.model_validate(
        {
            "models": [
                {"model_id": "m", "model_version": "2", "implementation": "opencv-haar"},
                {"model_id": "m", "model_version": "10", "implementation": "opencv-haar"},
            ]
        }
    )
    assert catalog.resolve(ModelSpec(model_id="m")).model_version == "10"
    assert catalog.resolve(ModelSpec(model_id="m", model_version=2)).model_version == "2"
    with pytest.raises(UnknownModel, match="available: 2, 10"):
        catalog.resolve(ModelSpec(model_id="m", model_version="3"))


def test_unknown_models_and_wrong_types_are_refused(catalog: FrameModelCatalog) -> None:
    with pytest.raises(UnknownModel, match="face-detection"):
        catalog.resolve(ModelSpec(model_id="nope"))
    with pytest.raises(UnknownModel, match="object-detection model"):
        catalog.resolve(ModelSpec(model_id="face-detection", inference_type="vlm"))


def test_inference_params_are_checked(catalog: FrameModelCatalog) -> None:
    ok = ModelSpec(model_id="face-detection", inference_params={"confidence": 0.5})
    assert catalog.resolve(ok).model_id == "face-detection"
    for params in ({"confidence": 2}, {"scale_factor": 1.2}):
        with pytest.raises(InvalidRequest, match="inference_params"):
            catalog.resolve(ModelSpec(model_id="face-detection", inference_params=params))
    vlm = ModelSpec(
        model_id="frame-captioner", inference_type="vlm", inference_params={"prompt": "Who?"}
    )
    assert catalog.resolve(vlm).implementation == "vlm"


def test_bad_catalogs_fail_at_load(tmp_path: Path) -> None:
    bad = [
        {"models": [{"model_id": "x", "implementation": "opencv-haar", "options": {"oops": 1}}]},
        {"models": [{"model_id": "x", "implementation": "tensorflow"}]},
        {"models": [{"model_id": "x", "implementation": "onnx", "options": {}}]},
        {
            "models": [
                {"model_id": "x", "implementation": "opencv-hog"},
                {"model_id": "x", "implementation": "opencv-haar"},
            ]
        },
    ]
    for data in bad:
        with pytest.raises(ValueError):
            FrameModelCatalog.model_validate(data)
    path = tmp_path / "c.yaml"
    path.write_text("- not a mapping\n")
    with pytest.raises(ValueError):
        FrameModelCatalog.from_yaml(path)


def test_job_requests_need_distinct_plain_model_ids() -> None:
    face = {"model_id": "face-detection"}
    with pytest.raises(ValueError, match="once per job"):
        JobRequest.model_validate({"input_url": "https://x/v.mp4", "models": [face, face]})
    with pytest.raises(ValueError, match="may not be"):
        JobRequest.model_validate(
            {"input_url": "https://x/v.mp4", "models": [{"model_id": "frame_offsets"}]}
        )
    with pytest.raises(ValueError):
        ModelSpec(model_id="../etc")
