"""Shared inputs for engine tests (the session-wide ``tiny_model_dir`` is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from serve_app.engines.profile import ModelProfile
from serve_app.media.frames import FrameBatch, MediaKind

# One intra-op thread: 2-core machines, and generation is faster without contention.
torch.set_num_threads(1)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TINY_PROFILE_PATH = PROJECT_ROOT / "configs" / "models" / "tiny-qwen2.5-vl.yaml"


@pytest.fixture(scope="session")
def tiny_profile() -> ModelProfile:
    return ModelProfile.from_yaml(TINY_PROFILE_PATH)


@pytest.fixture
def image() -> np.ndarray:
    """An RGB frame that the tiny processor keeps at 56x84 (6 visual tokens)."""
    return np.random.default_rng(1).integers(0, 256, (56, 84, 3), dtype=np.uint8)


MakeVideo = Callable[..., FrameBatch]


@pytest.fixture
def make_video() -> MakeVideo:
    def make(
        num_frames: int = 4, height: int = 56, width: int = 56, fps: float = 30.0, step: int = 10
    ) -> FrameBatch:
        frames = np.random.default_rng(2).integers(
            0, 256, (num_frames, height, width, 3), dtype=np.uint8
        )
        indices = tuple(i * step for i in range(num_frames))
        total = num_frames * step  # the source runs one step past the last sample
        return FrameBatch(
            kind=MediaKind.VIDEO,
            frames=frames,
            frame_indices=indices,
            timestamps=tuple(i / fps for i in indices),
            source_fps=fps,
            total_frames=total,
            duration_s=total / fps,
        )

    return make
