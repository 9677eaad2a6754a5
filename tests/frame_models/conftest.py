"""Small ONNX detectors built with the ``onnx`` helper API (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _gemm_model(path: Path, weights: np.ndarray, bias: np.ndarray, shape: list[int]) -> Path:
    """images (1,3,32,32) -> mean per channel -> Gemm -> Reshape to ``shape``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "B"], ["rows"]),
        helper.make_node("Reshape", ["rows", "shape"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "B"),
            numpy_helper.from_array(np.array(shape, np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def boxes_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One box over the middle half of the frame, scored by the frame's brightness."""
    weights = np.zeros((3, 6))
    weights[:, 4] = 1 / 3
    bias = np.array([0.25, 0.25, 0.75, 0.75, 0.0, 1.0])
    return _gemm_model(tmp_path_factory.mktemp("onnx") / "boxes.onnx", weights, bias, [1, 1, 6])


@pytest.fixture(scope="session")
def yolo_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """YOLOv8 layout (1, 4 + 2 classes, 3 anchors) in 32x32 input pixels.

    Anchors 0 and 1 overlap (class 0, scored 0.9 and 0.6: NMS keeps one); anchor 2 is
    class 1 at 0.8, elsewhere.
    """
    table = np.array(
        [
            [16, 17, 6],  # cx
            [16, 16, 6],  # cy
            [8, 8, 4],  # w
            [8, 8, 4],  # h
            [0.9, 0.6, 0.0],  # class 0
            [0.0, 0.1, 0.8],  # class 1
        ]
    )
    return _gemm_model(
        tmp_path_factory.mktemp("onnx") / "yolo.onnx", np.zeros((3, 18)), table.ravel(), [1, 6, 3]
    )
