"""Deployment tests mix in-process use of deployment classes with real ``serve.run``."""

from __future__ import annotations

import pytest

from serve_app.deployments.story_writer import StoryWriter
from serve_app.deployments.vision_language_model import VisionLanguageModel
from tests.support.serve_batching import reset_batch_queues


@pytest.fixture(autouse=True, scope="module")
def _picklable_deployments() -> None:
    """Each module starts with deployment classes Ray can pickle (see serve_batching)."""
    reset_batch_queues(VisionLanguageModel, StoryWriter)
