"""OpenCV's bundled detectors: a Haar cascade (faces) and the HOG people detector.

Both ship inside ``opencv-python-headless`` 4.x (``cv2.data.haarcascades`` and
``HOGDescriptor_getDefaultPeopleDetector``), so they need no download. OpenCV 5 dropped
them from the main module; the dependency is pinned below 5 for that reason.
Detectors hold a lock: one OpenCV object is not used by two threads at once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from serve_app.frame_models.base import Box, logistic
from serve_app.frame_models.catalog import HaarOptions, HogOptions


def cascade_path(name: str) -> Path:
    """A cascade file by name (in ``cv2.data.haarcascades``) or absolute path."""
    candidate = Path(name)
    if not candidate.is_absolute():
        candidate = Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]
    if not candidate.is_file():
        raise FileNotFoundError(f"Haar cascade not found: {name}")
    return candidate


class HaarCascadeDetector:
    """``cv2.CascadeClassifier.detectMultiScale3``; confidence from the stage weights."""

    def __init__(self, options: HaarOptions) -> None:
        self.options = options
        self._cascade = cv2.CascadeClassifier(str(cascade_path(options.cascade)))
        if self._cascade.empty():
            raise ValueError(f"cannot load Haar cascade {options.cascade}")
        self._lock = threading.Lock()

    def detect(self, frame: np.ndarray) -> list[Box]:
        o = self.options
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if o.equalize:
            gray = cv2.equalizeHist(gray)
        with self._lock:
            rects, _levels, weights = self._cascade.detectMultiScale3(
                gray,
                scaleFactor=o.scale_factor,
                minNeighbors=o.min_neighbors,
                minSize=(o.min_size, o.min_size),
                outputRejectLevels=True,
            )
        return _boxes(rects, weights, o.class_name, o.class_id)


class HogPeopleDetector:
    """``cv2.HOGDescriptor`` with OpenCV's default (Dalal-Triggs) people SVM."""

    def __init__(self, options: HogOptions) -> None:
        self.options = options
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(
            np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32)
        )
        self._lock = threading.Lock()

    def detect(self, frame: np.ndarray) -> list[Box]:
        o = self.options
        if frame.shape[0] < 128 or frame.shape[1] < 64:
            return []  # smaller than the detection window
        with self._lock:
            rects, weights = self._hog.detectMultiScale(
                frame,
                winStride=(o.win_stride, o.win_stride),
                padding=(o.padding, o.padding),
                scale=o.scale,
            )
        return _boxes(rects, weights, o.class_name, o.class_id)


def _boxes(rects: Any, weights: Any, class_name: str, class_id: int) -> list[Box]:
    """OpenCV's ``(x, y, w, h)`` rectangles and raw scores as :class:`Box` values."""
    return [
        Box(float(x), float(y), float(w), float(h), logistic(float(wt)), class_name, class_id)
        for (x, y, w, h), wt in zip(rects, np.ravel(weights), strict=False)
    ]
