"""An ONNX object detector, run with OpenCV's DNN module (no extra runtime needed).

Two output layouts are understood (``OnnxOptions.output_format``):

* ``boxes``: rows of ``[x1, y1, x2, y2, score, class_id]`` (any leading dimensions),
  corners normalized to 0..1 or in network-input pixels;
* ``yolov8``: ``(1, 4 + C, N)`` with centre x/y, width, height in input pixels and one
  score per class (what Ultralytics exports), filtered with non-maximum suppression.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from serve_app.frame_models.base import Box
from serve_app.frame_models.catalog import OnnxOptions


class OnnxDetector:
    """Loads ``options.path`` once; one forward pass per frame."""

    def __init__(self, options: OnnxOptions, base_dir: Path | None = None) -> None:
        self.options = options
        path = options.path if options.path.is_absolute() else (base_dir or Path()) / options.path
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        self._net = cv2.dnn.readNetFromONNX(str(path))
        self._lock = threading.Lock()

    def _label(self, class_id: int) -> str:
        names = self.options.class_names
        if 0 <= class_id < len(names):
            return names[class_id]
        return self.options.class_name if not names else str(class_id)

    def detect(self, frame: np.ndarray) -> list[Box]:
        o = self.options
        height, width = frame.shape[:2]
        blob = cv2.dnn.blobFromImage(
            frame,
            scalefactor=o.pixel_scale,
            size=o.input_size,
            mean=o.mean,
            swapRB=o.bgr,
            crop=False,
        )
        with self._lock:
            self._net.setInput(blob)
            output = np.asarray(self._net.forward(), dtype=np.float32)
        sx, sy = width / o.input_size[0], height / o.input_size[1]
        if o.output_format == "yolov8":
            return self._yolov8(output, sx, sy)
        return self._boxes(output, width, height, sx, sy)

    def _boxes(
        self, output: np.ndarray, width: int, height: int, sx: float, sy: float
    ) -> list[Box]:
        rows = output.reshape(-1, 6)
        fx, fy = (width, height) if self.options.normalized else (sx, sy)
        boxes = []
        for x1, y1, x2, y2, score, cls in rows.tolist():
            if score <= 0 or x2 <= x1 or y2 <= y1:
                continue
            class_id = int(cls)
            boxes.append(
                Box(
                    x1 * fx,
                    y1 * fy,
                    (x2 - x1) * fx,
                    (y2 - y1) * fy,
                    float(score),
                    self._label(class_id),
                    class_id,
                )
            )
        return boxes

    def _yolov8(self, output: np.ndarray, sx: float, sy: float) -> list[Box]:
        o = self.options
        table = output.reshape(output.shape[-2], output.shape[-1]).T  # (N, 4 + C)
        scores = table[:, 4:]
        class_ids = scores.argmax(axis=1)
        best = scores[np.arange(len(table)), class_ids]
        chosen = best >= max(o.confidence, 1e-3)
        if not chosen.any():
            return []
        cx, cy, w, h = (table[chosen, i] for i in range(4))
        rects = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
        kept = cv2.dnn.NMSBoxes(rects.tolist(), best[chosen].tolist(), o.confidence, o.nms_iou)
        boxes = []
        for i in np.ravel(kept).tolist():
            left, top, bw, bh = rects[i].tolist()
            class_id = int(class_ids[chosen][i])
            boxes.append(
                Box(
                    left * sx,
                    top * sy,
                    bw * sx,
                    bh * sy,
                    float(best[chosen][i]),
                    self._label(class_id),
                    class_id,
                )
            )
        return boxes
