"""Model fixtures (a pytest plugin, registered in ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.engines.factory import build_engine
from tests.support.graphs import tiny_profile


@pytest.fixture(scope="session")
async def tiny_engine(tiny_model_dir: Path):
    """The tiny Qwen2.5-VL on the transformers engine, in process, once per session."""
    profile = tiny_profile(tiny_model_dir, max_new_tokens=12)
    engine = build_engine(profile, tiny_model_dir.parent)
    await engine.start()
    yield profile, engine
    await engine.shutdown()
