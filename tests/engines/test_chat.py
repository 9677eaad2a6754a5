from __future__ import annotations

import numpy as np
import pytest

from serve_app.engines.base import GenerationRequest
from serve_app.engines.chat import (
    FALLBACK_FPS,
    build_messages,
    require_text_only,
    sampled_fps,
    video_metadata,
)
from serve_app.errors import InvalidRequest
from serve_app.media.frames import FrameBatch, MediaKind

from .conftest import MakeVideo


def test_media_come_first_in_one_user_turn(image: np.ndarray) -> None:
    request = GenerationRequest(prompt="Compare.", images=(image, image), system="Be brief.")
    assert build_messages(request) == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare."}],
        },
    ]


def test_video_and_text_only_messages(make_video: MakeVideo) -> None:
    video_request = GenerationRequest(prompt="What happens?", video=make_video())
    assert build_messages(video_request)[0]["content"][0] == {"type": "video"}
    assert build_messages(GenerationRequest(prompt="A story.")) == [
        {"role": "user", "content": "A story."}
    ]


def test_require_text_only(image: np.ndarray) -> None:
    require_text_only(GenerationRequest(prompt="Hi"), "story")
    with pytest.raises(InvalidRequest, match="text-only"):
        require_text_only(GenerationRequest(prompt="Hi", images=(image,)), "story")


def test_video_metadata_from_source_timing(make_video: MakeVideo) -> None:
    meta = video_metadata(make_video(num_frames=4, fps=30.0, step=15))
    assert meta["fps"] == 30.0
    assert meta["frames_indices"] == [0, 15, 30, 45]
    assert meta["total_num_frames"] == 60
    assert meta["duration"] == pytest.approx(2.0)
    assert (meta["width"], meta["height"]) == (56, 56)
    assert sampled_fps(meta) == pytest.approx(2.0)


def frames_without_fps(timestamps: tuple[float, ...]) -> FrameBatch:
    n = len(timestamps)
    return FrameBatch(
        kind=MediaKind.VIDEO,
        frames=np.zeros((n, 28, 28, 3), np.uint8),
        frame_indices=tuple(range(n)),
        timestamps=timestamps,
    )


def test_video_metadata_without_source_fps() -> None:
    meta = video_metadata(frames_without_fps((0.0, 0.5, 1.0, 1.5)))
    assert (meta["fps"], meta["frames_indices"], meta["total_num_frames"]) == (2.0, [0, 1, 2, 3], 4)
    assert sampled_fps(meta) == 2.0
    assert video_metadata(frames_without_fps((0.0, 0.0)))["fps"] == FALLBACK_FPS
