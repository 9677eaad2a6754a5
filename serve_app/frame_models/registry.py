"""Build catalog entries into detectors and run them over batches of frames."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from serve_app.errors import UnknownModel
from serve_app.frame_models.base import FrameDetector, keep, scale_box, shrink, to_prediction
from serve_app.frame_models.catalog import (
    CatalogEntry,
    FrameModelCatalog,
    HaarOptions,
    HogOptions,
    OnnxOptions,
)
from serve_app.frame_models.onnx import OnnxDetector
from serve_app.frame_models.opencv import HaarCascadeDetector, HogPeopleDetector
from serve_app.frame_models.resolved import DetectorModel
from serve_app.frame_models.results import Detections

logger = logging.getLogger(__name__)


def build_detector(entry: CatalogEntry, catalog: FrameModelCatalog) -> FrameDetector:
    """The implementation of a detection ``entry``.

    Raises:
        UnknownModel: ``entry`` is not an object-detection model.
        FileNotFoundError, ValueError: its files are missing or unreadable.
    """
    options = entry.parsed_options()
    if isinstance(options, HaarOptions):
        return HaarCascadeDetector(options)
    if isinstance(options, HogOptions):
        return HogPeopleDetector(options)
    if isinstance(options, OnnxOptions):
        return OnnxDetector(options, catalog.base_dir)
    raise UnknownModel(f"model {entry.model_id!r} is not an object-detection model")


class DetectorRegistry:
    """Detectors of a catalog, each built on first use and then reused."""

    def __init__(self, catalog: FrameModelCatalog) -> None:
        self.catalog = catalog
        self._built: dict[tuple[str, str], FrameDetector] = {}
        self._lock = threading.Lock()

    def detector(self, entry: CatalogEntry) -> FrameDetector:
        key = (entry.model_id, entry.model_version)
        with self._lock:
            if key not in self._built:
                self._built[key] = build_detector(entry, self.catalog)
            return self._built[key]

    def warm_up(self) -> None:
        """Build every detector now, so a broken catalog fails at startup."""
        for entry in self.catalog.models:
            if entry.inference_type == "object-detection":
                self.detector(entry)

    def run(
        self, model: DetectorModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[Detections | None]:
        """One detection entry (None where it failed) per frame of ``frames`` ``(T, H, W, 3)``.

        Args:
            original_size: ``(width, height)`` of the source video's frames; boxes and
                ``image`` are reported in it even when ``frames`` were scaled down.
        """
        detector = self.detector(model.entry)
        max_side, confidence, limit = model.options.max_side, model.confidence, model.max_detections
        width, height = original_size
        results: list[Detections | None] = []
        for frame in frames:
            started = time.perf_counter()
            try:
                small, factor = shrink(frame, max_side)
                sx = factor * width / frame.shape[1]
                sy = factor * height / frame.shape[0]
                boxes = keep(detector.detect(small), confidence, limit)
                predictions = [to_prediction(scale_box(b, sx, sy)) for b in boxes]
            except Exception:
                logger.warning("model %s failed on a frame", model.model_id, exc_info=True)
                results.append(None)
                continue
            results.append(
                {
                    "time": round(time.perf_counter() - started, 4),
                    "image": {"width": width, "height": height},
                    "predictions": predictions,
                }
            )
        return results
