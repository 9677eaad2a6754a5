"""What a per-frame model returns for one frame: the entries of the results JSON.

The keys, their order and their values are public (``/videoinfer/`` results), so the
entries are plain dicts typed as :class:`~typing.TypedDict` and serialized as built.
"""

from __future__ import annotations

from typing import TypedDict


class ImageSize(TypedDict):
    width: int
    height: int


#: One box: centre ``x``/``y``, size in pixels of the original frame, label.
Prediction = TypedDict(
    "Prediction",
    {
        "x": float,
        "y": float,
        "width": float,
        "height": float,
        "confidence": float,
        "class": str,
        "class_id": int,
    },
)


class Detections(TypedDict):
    """An object detector's entry: seconds taken, the frame size, the boxes."""

    time: float
    image: ImageSize
    predictions: list[Prediction]


class Caption(TypedDict):
    """A ``vlm`` captioner's entry: seconds taken, the text and its token counts."""

    time: float
    text: str
    input_tokens: int
    output_tokens: int


#: One result per frame: an entry, or None when the model failed on that frame.
FrameResult = Detections | Caption | None
