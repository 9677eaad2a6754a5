"""Story settings: defaults from the issue, environment overrides."""

from __future__ import annotations

import pytest

from serve_app.config import Settings
from serve_app.story.settings import MIB, StorySettings


def test_defaults() -> None:
    story = StorySettings()
    assert story.cost == 10
    assert story.max_image_bytes == 10 * MIB and story.max_video_bytes == 50 * MIB
    assert story.max_images == 8 and story.default_language == "th"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVE_APP_STORY__COST", "3")
    monkeypatch.setenv("SERVE_APP_STORY__MAX_IMAGES", "2")
    settings = Settings()
    assert settings.story.cost == 3 and settings.story.max_images == 2
