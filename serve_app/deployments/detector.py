"""Detector: the object-detection models of video jobs on CPU replicas."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np

from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.registry import DetectorRegistry
from serve_app.frame_models.resolved import DetectorModel
from serve_app.frame_models.results import Detections
from serve_app.observability import metrics

DEPLOYMENT = "Detector"


class Detector:
    """Runs any object-detection model of the catalog over a batch of frames.

    Args:
        cv_threads: OpenCV threads per replica (0: OpenCV's default, one per core).
    """

    def __init__(self, catalog: FrameModelCatalog, cv_threads: int = 0) -> None:
        if cv_threads > 0:
            cv2.setNumThreads(cv_threads)
        self._registry = DetectorRegistry(catalog)
        self._registry.warm_up()

    async def detect(
        self, model: DetectorModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[Detections | None]:
        """One detection entry (or None) per frame; see ``DetectorRegistry.run``.

        Timed per model in ``serve_app_model_latency_seconds`` (errors counted).
        """
        with metrics.observe_latency(DEPLOYMENT, model.model_id):
            return await asyncio.to_thread(self._registry.run, model, frames, original_size)
