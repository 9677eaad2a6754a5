"""The story use case: validation first, then observe → write → translate (tiny model)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from serve_app.config import Settings
from serve_app.errors import GenerationFailed, InvalidRequest, MediaRejected, UnsupportedMedia
from serve_app.media.frames import MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.describe import DescribePipeline
from serve_app.storage.spool import SpooledFile
from serve_app.story import prompts
from serve_app.story.pipeline import StoryPipeline
from serve_app.story.service import (
    StoryParams,
    TokenUsage,
    file_label,
    prepare_story,
    story_limits,
    tell_story,
)
from serve_app.story.settings import StoryConfig, StorySettings
from tests.support.media_files import make_image, make_video, truncate_file
from tests.support.story_engines import RecordingEngine, ScriptedEngine


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("story-files")
    video = make_video(root / "clip.mp4", frames=90, width=160, height=120)
    return {
        "jpeg": make_image(root / "a.jpg", "jpeg", 80, 60),
        "png": make_image(root / "b.png", "png", 60, 80),
        "webp": make_image(root / "c.webp", "webp", 64, 64),
        "video": video,
        "cut": truncate_file(video, root / "cut.mp4", 0.3),
    }


def spooled(path: Path, name: str | None = None) -> SpooledFile:
    return SpooledFile(path=path, size=path.stat().st_size, filename=name or path.name)


@pytest.fixture
def settings(tmp_path: Path) -> StoryConfig:
    return Settings(data_dir=tmp_path, story=StorySettings(max_video_frames=6)).story_config


@pytest.fixture
def tiny(tiny_engine):
    """Vision and story engines: the real tiny model, every call recorded."""
    profile, engine = tiny_engine
    vision, writer = RecordingEngine(engine), RecordingEngine(engine)
    vision_pipeline = DescribePipeline.in_process(
        {profile.name: (profile, vision)}, profile.name, MediaLimits()
    )
    return StoryPipeline.in_process(vision_pipeline, profile, writer), vision, writer


def scripted(vision: ScriptedEngine, writer: ScriptedEngine, tiny_engine) -> StoryPipeline:
    profile, _ = tiny_engine
    vision_pipeline = DescribePipeline.in_process(
        {profile.name: (profile, vision)}, profile.name, MediaLimits()
    )
    return StoryPipeline.in_process(vision_pipeline, profile, writer)


# -- validation ---------------------------------------------------------------------


async def test_defaults(files, settings) -> None:
    plan = await prepare_story([spooled(files["jpeg"])], StoryParams(), settings)
    assert plan.kind is MediaKind.IMAGE
    assert plan.style == prompts.DEFAULT_STYLE
    assert (plan.language.code, plan.language.name) == ("th", "Thai")
    assert plan.media[0].label == 'file 1 ("a.jpg")'


async def test_prompt_and_language_are_taken(files, settings) -> None:
    params = StoryParams(prompt="  A fable.  ", language="JA")
    plan = await prepare_story([spooled(files["video"])], params, settings)
    assert plan.kind is MediaKind.VIDEO and plan.style == "A fable."
    assert plan.language.code == "ja"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], "no file"),
        (["jpeg", "video"], "images and a video"),
        (["video", "video"], "2 videos"),
        (["jpeg"] * 9, "at most 8 images"),
    ],
)
async def test_bad_file_sets_are_refused(files, settings, names, message) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await prepare_story([spooled(files[n]) for n in names], StoryParams(), settings)


async def test_size_limits_name_the_file_and_the_limit(files, tmp_path) -> None:
    small = Settings(data_dir=tmp_path, story=StorySettings(max_image_bytes=300)).story_config
    uploads = [spooled(files["png"]), spooled(files["jpeg"], "big\n<b>.jpg")]
    with pytest.raises(InvalidRequest) as info:
        await prepare_story(uploads, StoryParams(), small)
    detail = info.value.detail
    assert detail.startswith('file 1 ("b.png")') or detail.startswith('file 2 ("big?<b>.jpg")')
    assert "limit per image is 300 bytes" in detail


async def test_global_media_limit_wins_when_smaller(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, media=MediaLimits(max_video_bytes=1000)).story_config
    assert story_limits(settings).max_video_bytes == 1000
    assert story_limits(settings).max_image_bytes == 10 * 1024 * 1024


async def test_media_errors_are_labelled(files, settings, tmp_path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(UnsupportedMedia, match=r'^file 2 \("notes.jpg"\)'):
        await prepare_story([spooled(files["jpeg"]), spooled(text)], StoryParams(), settings)
    with pytest.raises(MediaRejected, match=r'^file 1 \("cut.mp4"\)'):
        await prepare_story([spooled(files["cut"])], StoryParams(), settings)


async def test_bad_prompt_and_language(files, settings) -> None:
    upload = [spooled(files["jpeg"])]
    with pytest.raises(InvalidRequest, match="prompt"):
        await prepare_story(upload, StoryParams(prompt="x" * 5000), settings)
    with pytest.raises(InvalidRequest, match="BCP-47"):
        await prepare_story(upload, StoryParams(language="klingon!"), settings)


def test_file_label_escapes_and_shortens() -> None:
    assert file_label(0, "") == "file 1"
    assert file_label(2, 'a"b\x00.jpg') == 'file 3 ("a\\"b?.jpg")'
    assert len(file_label(0, "x" * 500)) < 100


# -- the model calls ------------------------------------------------------------------


async def test_one_image_with_the_tiny_model(files, settings, tiny) -> None:
    story, vision, writer = tiny
    plan = await prepare_story([spooled(files["jpeg"])], StoryParams(), settings)
    outcome = await tell_story(story, plan, settings, request_id="r1")
    assert outcome.english.strip() and outcome.translation.strip()
    assert len(vision.results) == 1 and len(writer.results) == 2
    recorded = vision.results + writer.results
    assert outcome.usage == TokenUsage.of(recorded)
    assert outcome.usage.input_tokens == sum(r.input_tokens for r in recorded) > 0
    assert outcome.usage.total_tokens == sum(r.total_tokens for r in recorded)
    story_call, translate_call = writer.requests
    assert not story_call.images and story_call.video is None
    assert story_call.system == prompts.STORY_SYSTEM
    assert prompts.DEFAULT_STYLE in story_call.prompt
    assert "Thai" in (translate_call.system or "")
    assert translate_call.prompt == outcome.english
    assert [r.request_id for r in writer.requests] == ["r1-story", "r1-translate"]


async def test_several_images_are_observed_one_by_one(files, settings, tiny) -> None:
    story, vision, writer = tiny
    uploads = [spooled(files[n]) for n in ("jpeg", "png", "webp")]
    plan = await prepare_story(uploads, StoryParams(prompt="A mystery."), settings)
    outcome = await tell_story(story, plan, settings)
    assert len(vision.requests) == 3
    assert all(len(r.images) == 1 for r in vision.requests)
    assert "Observations of 3 photos" in writer.requests[0].prompt
    assert outcome.usage == TokenUsage.of(vision.results + writer.results)


async def test_video_frames_span_the_whole_video(files, settings, tiny) -> None:
    story, vision, _ = tiny
    plan = await prepare_story([spooled(files["video"])], StoryParams(), settings)
    await tell_story(story, plan, settings)
    [request] = vision.requests
    assert request.video is not None and not request.images
    indices = request.video.frame_indices
    assert len(indices) == 6  # StorySettings.max_video_frames (tiny budget: 8)
    assert indices[0] == 0 and indices[-1] == 89
    gaps = [b - a for a, b in itertools.pairwise(indices)]
    assert max(gaps) - min(gaps) <= 1
    assert request.prompt == prompts.OBSERVE_VIDEO_PROMPT


async def test_observations_run_concurrently(files, settings, tiny_engine) -> None:
    vision = ScriptedEngine(["A red square."], delay_s=0.05)
    writer = ScriptedEngine(["A story.", "Une histoire."])
    story = scripted(vision, writer, tiny_engine)
    uploads = [spooled(files[n]) for n in ("jpeg", "png", "webp", "jpeg")]
    plan = await prepare_story(uploads, StoryParams(language="fr"), settings)
    outcome = await tell_story(story, plan, settings)
    assert vision.max_in_flight == 4
    assert (outcome.english, outcome.translation) == ("A story.", "Une histoire.")
    assert outcome.usage == TokenUsage(input_tokens=6 * 7, output_tokens=6 * 3)
    assert outcome.truncated == ()


@pytest.mark.parametrize(
    ("texts", "what"), [(["  "], "story"), (["A story.", "\n"], "translation")]
)
async def test_empty_output_fails(files, settings, tiny_engine, texts, what) -> None:
    story = scripted(ScriptedEngine(["Seen."]), ScriptedEngine(texts), tiny_engine)
    plan = await prepare_story([spooled(files["jpeg"])], StoryParams(), settings)
    with pytest.raises(GenerationFailed, match=f"empty {what}"):
        await tell_story(story, plan, settings)


async def test_empty_observation_fails(files, settings, tiny_engine) -> None:
    story = scripted(ScriptedEngine([""]), ScriptedEngine(), tiny_engine)
    plan = await prepare_story([spooled(files["jpeg"])], StoryParams(), settings)
    with pytest.raises(GenerationFailed, match="empty observation"):
        await tell_story(story, plan, settings)


async def test_truncated_outputs_are_trimmed_and_reported(files, settings, tiny_engine) -> None:
    writer = ScriptedEngine(["It was late. The cat sle", "ดึกแล้ว แมวหลับ"], finish_reason="length")
    story = scripted(ScriptedEngine(["Seen."]), writer, tiny_engine)
    plan = await prepare_story([spooled(files["jpeg"])], StoryParams(), settings)
    outcome = await tell_story(story, plan, settings)
    assert outcome.english == "It was late."
    assert outcome.translation == "ดึกแล้ว แมวหลับ…"
    assert outcome.truncated == ("english", "translation")
    assert writer.requests[1].prompt == "It was late."
