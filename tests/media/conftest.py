"""Shared fixtures for media tests: real clips generated once per session, hang guard."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from serve_app.media.limits import MediaLimits
from tests.support.media_files import encoder_for, make_video

#: No media test may take longer than this (a hang is a failure, not a stuck suite).
TEST_DEADLINE_S = 60


class _Hang(Exception):
    pass


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise _Hang(f"media test still running after {TEST_DEADLINE_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_DEADLINE_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class Clips:
    """Makes each distinct clip once per session and hands out its path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[tuple[tuple[str, Any], ...], Path] = {}

    def get(self, **kwargs: Any) -> Path:
        codec = kwargs.get("codec", "h264")
        if encoder_for(codec) is None:
            pytest.skip(f"this PyAV build has no {codec} encoder")
        key = tuple(sorted(kwargs.items()))
        if key not in self._made:
            name = "_".join(f"{k}-{v}" for k, v in key) or "default"
            ext = kwargs.get("container", "mp4")
            self._made[key] = make_video(self.root / f"{name}.{ext}", **kwargs)
        return self._made[key]


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture
def limits() -> MediaLimits:
    return MediaLimits(decode_timeout_s=30)


#: (codec, container) pairs every decoder test runs over.
CODEC_CONTAINERS = [
    ("h264", "mp4"),
    ("h264", "mov"),
    ("h264", "mkv"),
    ("hevc", "mp4"),
    ("vp9", "webm"),
    ("av1", "mkv"),
    ("av1", "mp4"),
]
