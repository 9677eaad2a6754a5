from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from serve_app.engines.jpeg import encode_jpeg, image_data_url, video_data_url


def test_encode_jpeg_round_trips_size_and_colour() -> None:
    image = np.full((30, 50, 3), (200, 40, 10), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_jpeg(image, quality=95))))
    assert decoded.shape == (30, 50, 3)
    assert np.abs(decoded.astype(int) - image).max() < 8


def test_quality_changes_the_size() -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(encode_jpeg(image, quality=20)) < len(encode_jpeg(image, quality=95))


def test_data_urls() -> None:
    frames = np.zeros((3, 28, 42, 3), dtype=np.uint8)
    url = image_data_url(frames[0])
    assert url.startswith("data:image/jpeg;base64,")
    video = video_data_url(frames)
    header, payload = video.split(",", 1)
    assert header == "data:video/jpeg;base64"
    parts = payload.split(",")
    assert len(parts) == 3
    assert Image.open(io.BytesIO(base64.b64decode(parts[2]))).size == (42, 28)
