"""What every detector returns, and the shared box handling.

A detector sees one RGB ``uint8`` frame ``(H, W, 3)`` and returns :class:`Box` es in
that frame's pixels (top-left corner plus size). :func:`to_prediction` turns them
into the public shape: ``x``/``y`` are the box *centre* in pixels of the original
video frame, as in the widely used hosted video-inference API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from serve_app.frame_models.results import Prediction


@dataclass(frozen=True)
class Box:
    """One detection in the pixels of the frame the detector saw."""

    left: float
    top: float
    width: float
    height: float
    confidence: float
    class_name: str
    class_id: int


class FrameDetector(Protocol):
    """A model that finds boxes in one frame."""

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Boxes in ``frame`` (RGB uint8, ``(H, W, 3)``), best first."""
        ...


def logistic(score: float) -> float:
    """Map an unbounded detector score (SVM margin, cascade stage sum) into (0, 1)."""
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, score))))


def shrink(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``frame`` scaled down so its longest side is at most ``max_side`` (0: as is).

    Returns the frame and the factor that maps its pixels back to the input's.
    """
    height, width = frame.shape[:2]
    longest = max(height, width)
    if max_side <= 0 or longest <= max_side:
        return frame, 1.0
    factor = max_side / longest
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), longest / max_side


def scale_box(box: Box, sx: float, sy: float) -> Box:
    return Box(
        box.left * sx,
        box.top * sy,
        box.width * sx,
        box.height * sy,
        box.confidence,
        box.class_name,
        box.class_id,
    )


def to_prediction(box: Box) -> Prediction:
    """The public prediction dict (centre x/y, width, height in pixels)."""
    return {
        "x": round(box.left + box.width / 2, 2),
        "y": round(box.top + box.height / 2, 2),
        "width": round(box.width, 2),
        "height": round(box.height, 2),
        "confidence": round(box.confidence, 4),
        "class": box.class_name,
        "class_id": box.class_id,
    }


def keep(boxes: list[Box], confidence: float, max_detections: int) -> list[Box]:
    """Boxes at or above ``confidence``, best first, at most ``max_detections``."""
    good = [b for b in boxes if b.confidence >= confidence]
    good.sort(key=lambda b: b.confidence, reverse=True)
    return good[:max_detections]
