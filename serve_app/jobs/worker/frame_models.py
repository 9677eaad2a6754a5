"""One orchestrator of a job's per-frame models, over small backend protocols.

:class:`FrameModels` sends a batch for a detector to a
:class:`~serve_app.frame_models.backends.DetectorBackend` and, for a ``vlm``
captioner, one request per frame to the
:class:`~serve_app.engines.backend.ModelBackend` of its model profile (so a Serve
replica batches them with whatever else it serves). In process the backends are
:class:`~serve_app.frame_models.backends.LocalDetector` and
:class:`~serve_app.engines.backend.EngineBackend`; under Serve, the handle adapters of
:mod:`serve_app.deployments.handles`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import numpy as np

from serve_app.engines.backend import ModelBackend
from serve_app.frame_models.backends import DetectorBackend
from serve_app.frame_models.captions import caption_request, timed_caption
from serve_app.frame_models.resolved import DetectorModel, FrameModel
from serve_app.frame_models.results import FrameResult


class FrameModelRunner(Protocol):
    """Runs one resolved model over one batch of frames (what the executor needs)."""

    async def run(
        self, model: FrameModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        """One entry (or None, for a frame that failed) per frame of ``frames``.

        Args:
            original_size: ``(width, height)`` of the source video's frames.

        Raises only when the whole call failed.
        """
        ...


class FrameModels:
    """Detections to ``detector``; captions to ``captioners[profile name]``."""

    def __init__(
        self, detector: DetectorBackend, captioners: Mapping[str, ModelBackend] | None = None
    ) -> None:
        self._detector = detector
        self._captioners = dict(captioners or {})

    async def run(
        self, model: FrameModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        if isinstance(model, DetectorModel):
            return await self._detector.detect(model, frames, original_size)
        backend = self._captioners[model.profile.name]
        requests = [caption_request(frame, model) for frame in frames]
        return list(await asyncio.gather(*(timed_caption(backend, r) for r in requests)))
