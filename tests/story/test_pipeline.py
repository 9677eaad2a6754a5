"""The in-process story pipeline: vision model choice, text-only writes, readiness."""

from __future__ import annotations

import numpy as np
import pytest

from serve_app.engines.base import GenerationRequest, SamplingParams
from serve_app.engines.profile import ModelProfile
from serve_app.errors import InvalidRequest
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.describe import DescribePipeline
from serve_app.story.pipeline import StoryPipeline
from tests.support.story_engines import ScriptedEngine

VISION = ModelProfile(name="eyes", backend="openai", model="eyes")
OTHER = ModelProfile(name="other-eyes", backend="openai", model="other")
WRITER = ModelProfile(name="pen", backend="openai", model="pen", multimodal=False, max_new_tokens=8)


def vision_pipeline() -> DescribePipeline:
    return DescribePipeline.in_process(
        {"eyes": (VISION, ScriptedEngine()), "other-eyes": (OTHER, ScriptedEngine())},
        "eyes",
        MediaLimits(),
    )


def test_vision_model_defaults_to_the_pipeline_default() -> None:
    story = StoryPipeline.in_process(vision_pipeline(), WRITER, ScriptedEngine())
    assert story.vision_model == "eyes"
    assert story.story_model == "pen"
    assert StoryPipeline.in_process(vision_pipeline(), WRITER, ScriptedEngine(), "other-eyes")


def test_unknown_vision_model_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="nope"):
        StoryPipeline.in_process(vision_pipeline(), WRITER, ScriptedEngine(), vision_model="nope")


async def test_write_caps_tokens_and_refuses_media() -> None:
    engine = ScriptedEngine()
    story = StoryPipeline.in_process(vision_pipeline(), WRITER, engine)
    await story.write(GenerationRequest(prompt="p", sampling=SamplingParams(max_tokens=100)))
    assert engine.requests[0].sampling.max_tokens == 8
    with pytest.raises(InvalidRequest):
        image = np.zeros((28, 28, 3), np.uint8)
        await story.write(GenerationRequest(prompt="p", images=(image,)))


async def test_readiness_follows_the_engine() -> None:
    engine = ScriptedEngine()
    story = StoryPipeline.in_process(vision_pipeline(), WRITER, engine)
    assert await story.readiness() == {"story:pen": True}
    engine.healthy = False
    assert await story.readiness() == {"story:pen": False}
