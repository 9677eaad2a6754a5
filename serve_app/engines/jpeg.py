"""JPEG data URLs for the OpenAI-compatible wire format (the only backend that encodes)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode one RGB ``uint8`` array ``(H, W, 3)`` as JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_data_url(image: np.ndarray, quality: int = 90) -> str:
    """``data:image/jpeg;base64,...`` for an ``image_url`` content part."""
    return f"data:image/jpeg;base64,{_b64(encode_jpeg(image, quality))}"


def video_data_url(frames: np.ndarray, quality: int = 90) -> str:
    """``data:video/jpeg;base64,<f1>,<f2>,...``: vLLM's frames-as-JPEGs video URL."""
    parts = ",".join(_b64(encode_jpeg(frame, quality)) for frame in frames)
    return f"data:video/jpeg;base64,{parts}"
