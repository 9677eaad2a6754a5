"""What the story model runs: text only, within its profile's token limit."""

from __future__ import annotations

import numpy as np
import pytest

from serve_app.engines.base import GenerationRequest, SamplingParams
from serve_app.engines.profile import ModelProfile
from serve_app.errors import InvalidRequest
from serve_app.story.requests import readiness_key, story_request

PROFILE = ModelProfile(name="writer", backend="openai", model="m", max_new_tokens=64)


def test_max_tokens_is_capped_at_the_profile() -> None:
    request = GenerationRequest(prompt="p", sampling=SamplingParams(max_tokens=500, seed=None))
    capped = story_request(request, PROFILE)
    assert capped.sampling == SamplingParams(max_tokens=64, seed=None)
    assert capped.prompt == "p"


def test_request_within_the_limit_is_unchanged() -> None:
    request = GenerationRequest(prompt="p", sampling=SamplingParams(max_tokens=10))
    assert story_request(request, PROFILE) is request


def test_media_are_refused() -> None:
    image = np.zeros((28, 28, 3), np.uint8)
    with pytest.raises(InvalidRequest, match="text-only"):
        story_request(GenerationRequest(prompt="p", images=(image,)), PROFILE)


def test_readiness_key() -> None:
    assert readiness_key(PROFILE) == "story:writer"
