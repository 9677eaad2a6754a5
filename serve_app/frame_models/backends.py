"""Where a job's detections run: :class:`DetectorBackend` and its in-process adapter.

The Serve adapter (``HandleDetector``) lives in :mod:`serve_app.deployments.handles`.
Captions go to a :class:`~serve_app.engines.backend.ModelBackend` instead.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import numpy as np

from serve_app.frame_models.registry import DetectorRegistry
from serve_app.frame_models.resolved import DetectorModel
from serve_app.frame_models.results import FrameResult


class DetectorBackend(Protocol):
    """Runs one object-detection model over one batch of frames."""

    async def detect(
        self, model: DetectorModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        """One entry (or None) per frame of ``frames`` ``(T, H, W, 3)``.

        Args:
            original_size: ``(width, height)`` of the source video's frames.
        """
        ...


class LocalDetector:
    """:class:`DetectorBackend` in this process: the registry in a worker thread."""

    def __init__(self, registry: DetectorRegistry) -> None:
        self.registry = registry

    async def detect(
        self, model: DetectorModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        entries = await asyncio.to_thread(self.registry.run, model, frames, original_size)
        return [*entries]
