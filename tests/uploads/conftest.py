"""Fixtures of the uploads tests: the tiny model (in process), a store with a clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.media.limits import MediaLimits
from serve_app.uploads.chunks import ChunkStore
from serve_app.uploads.settings import UploadSettings
from tests.support.uploads import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> ChunkStore:
    """Small limits: 16 chunks, TTL 100 s, 2 open uploads, claims stale after 50 s."""
    settings = UploadSettings(max_chunks=16, ttl_s=100, max_open_uploads=2, finalize_timeout_s=50)
    limits = MediaLimits(max_image_bytes=1000, max_video_bytes=5000)
    return ChunkStore(tmp_path / "uploads", settings, limits, clock=clock)
