"""OpenCV's bundled detectors on a real photo, the ONNX detector, and the registry."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from serve_app.frame_models.base import Box, logistic, shrink, to_prediction
from serve_app.frame_models.catalog import FrameModelCatalog, HaarOptions, HogOptions, OnnxOptions
from serve_app.frame_models.onnx import OnnxDetector
from serve_app.frame_models.opencv import HaarCascadeDetector, HogPeopleDetector, cascade_path
from serve_app.frame_models.registry import DetectorRegistry
from serve_app.frame_models.resolved import DetectorModel, detector_model
from serve_app.frame_models.spec import ModelSpec
from tests.support.job_videos import astronaut

FACE = (177, 66, 95, 95)  # OpenCV 4.x's default frontal-face cascade on astronaut.png


def test_opencv_4_ships_the_detectors() -> None:
    assert cv2.__version__.startswith("4.")
    assert hasattr(cv2, "CascadeClassifier")
    assert hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector")
    assert cascade_path("haarcascade_frontalface_default.xml").is_file()
    with pytest.raises(FileNotFoundError):
        cascade_path("no-such-cascade.xml")


def test_haar_finds_the_astronauts_face() -> None:
    boxes = HaarCascadeDetector(HaarOptions(class_name="face")).detect(astronaut())
    assert len(boxes) == 1
    box = boxes[0]
    assert (box.left, box.top, box.width, box.height) == FACE
    assert 0.5 < box.confidence < 1 and box.class_name == "face"
    assert to_prediction(box) == {
        "x": 224.5,
        "y": 113.5,
        "width": 95.0,
        "height": 95.0,
        "confidence": round(box.confidence, 4),
        "class": "face",
        "class_id": 0,
    }


def test_hog_runs_and_skips_frames_smaller_than_its_window() -> None:
    detector = HogPeopleDetector(HogOptions(class_name="person"))
    boxes = detector.detect(astronaut())
    assert all(b.class_name == "person" and 0 < b.confidence < 1 for b in boxes)
    assert detector.detect(np.zeros((100, 50, 3), np.uint8)) == []


def test_onnx_boxes_layout(boxes_onnx: Path) -> None:
    detector = OnnxDetector(
        OnnxOptions(path=boxes_onnx, input_size=(32, 32), class_names=["thing", "other"])
    )
    bright = np.full((60, 80, 3), 255, np.uint8)
    (box,) = detector.detect(bright)
    assert (box.left, box.top, box.width, box.height) == (20, 15, 40, 30)
    assert box.class_name == "other" and box.class_id == 1
    assert box.confidence == pytest.approx(1.0)
    assert detector.detect(np.zeros((60, 80, 3), np.uint8)) == []  # score 0


def test_onnx_yolov8_layout_with_nms(yolo_onnx: Path) -> None:
    detector = OnnxDetector(
        OnnxOptions(path=yolo_onnx, input_size=(32, 32), output_format="yolov8", confidence=0.25)
    )
    boxes = detector.detect(np.zeros((64, 64, 3), np.uint8))  # frame = 2x the input
    assert [(b.class_id, round(b.confidence, 2)) for b in boxes] == [(0, 0.9), (1, 0.8)]
    first = boxes[0]
    assert (first.left, first.top, first.width, first.height) == (24, 24, 16, 16)


def resolved(catalog: FrameModelCatalog, spec: ModelSpec) -> DetectorModel:
    return detector_model(catalog.resolve(spec), spec)


def test_onnx_paths_resolve_against_the_catalog(boxes_onnx: Path) -> None:
    catalog = FrameModelCatalog.model_validate(
        {
            "base_dir": str(boxes_onnx.parent),
            "models": [
                {
                    "model_id": "tiny",
                    "implementation": "onnx",
                    "options": {"path": boxes_onnx.name, "input_size": [32, 32]},
                }
            ],
        }
    )
    registry = DetectorRegistry(catalog)
    registry.warm_up()
    frames = np.full((2, 40, 40, 3), 255, np.uint8)
    out = registry.run(resolved(catalog, ModelSpec(model_id="tiny")), frames, (80, 80))
    assert [e["predictions"][0]["x"] for e in out if e] == [40.0, 40.0]
    with pytest.raises(FileNotFoundError):
        OnnxDetector(OnnxOptions(path=Path("missing.onnx")), boxes_onnx.parent)


def test_registry_maps_boxes_back_to_the_original_frame() -> None:
    catalog = FrameModelCatalog.model_validate(
        {
            "models": [
                {
                    "model_id": "face",
                    "implementation": "opencv-haar",
                    "options": {"max_side": 256, "class_name": "face"},
                }
            ]
        }
    )
    registry = DetectorRegistry(catalog)
    photo = astronaut()
    half = np.ascontiguousarray(photo[::2, ::2])  # as if the runner had scaled it down
    entries = [
        *registry.run(resolved(catalog, ModelSpec(model_id="face")), photo[None], (512, 512)),
        *registry.run(resolved(catalog, ModelSpec(model_id="face")), half[None], (512, 512)),
    ]
    for entry in entries:
        assert entry is not None and entry["image"] == {"width": 512, "height": 512}
        (pred,) = entry["predictions"]
        assert abs(pred["x"] - 224.5) < 8 and abs(pred["y"] - 113.5) < 8
        assert 80 < pred["width"] < 115
    strict = ModelSpec(model_id="face", inference_params={"confidence": 0.99999})
    assert registry.run(resolved(catalog, strict), photo[None], (512, 512))[0]["predictions"] == []  # type: ignore[index]


def test_a_failing_frame_gives_null() -> None:
    catalog = FrameModelCatalog.model_validate(
        {"models": [{"model_id": "face", "implementation": "opencv-haar"}]}
    )
    registry = DetectorRegistry(catalog)
    frames = np.zeros((2, 64, 64, 3), np.uint8)

    class Flaky:
        calls = 0

        def detect(self, frame: np.ndarray) -> list[Box]:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("boom")
            return []

    registry._built[("face", "1")] = Flaky()
    first, second = registry.run(resolved(catalog, ModelSpec(model_id="face")), frames, (64, 64))
    assert first is None and second is not None and second["predictions"] == []


def test_helpers() -> None:
    assert logistic(0) == 0.5 and logistic(1000) == pytest.approx(1.0)
    small, factor = shrink(np.zeros((100, 400, 3), np.uint8), 200)
    assert small.shape == (50, 200, 3) and factor == 2.0
    same, one = shrink(np.zeros((10, 10, 3), np.uint8), 0)
    assert same.shape == (10, 10, 3) and one == 1.0
