"""Settings of the Story API: ``Settings.story`` (env ``SERVE_APP_STORY__*``)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from serve_app.media.limits import MediaLimits

MIB = 1024 * 1024


class StorySettings(BaseModel):
    """Limits, cost and generation budgets of ``POST /analyze/``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Credits one story costs (admins pay nothing).
    cost: int = Field(default=10, ge=0)
    #: Largest image file (the smaller of this and ``media.max_image_bytes`` applies).
    max_image_bytes: int = Field(default=10 * MIB, ge=1)
    #: Largest video file (the smaller of this and ``media.max_video_bytes`` applies).
    max_video_bytes: int = Field(default=50 * MIB, ge=1)
    #: Most images in one request.
    max_images: int = Field(default=8, ge=1, le=64)
    #: Frames sampled evenly over a whole video (the vision model's budget may lower it).
    max_video_frames: int = Field(default=16, ge=2, le=256)
    #: Vision model that observes the media; ``None``: the service's default model.
    vision_model: str | None = None
    #: Token budgets per call (each model's ``max_new_tokens`` may lower them).
    observation_max_tokens: int = Field(default=256, ge=1)
    story_max_tokens: int = Field(default=512, ge=1)
    #: Translations into non-Latin scripts need more tokens than the English story.
    translation_max_tokens: int = Field(default=1024, ge=1)
    #: Sampling temperature of the story (observations and translations use 0).
    story_temperature: float = Field(default=0.7, ge=0, le=2)
    #: Language of the translation when the request names none.
    default_language: str = "th"


@dataclass(frozen=True)
class StoryConfig:
    """Everything the story use case reads; built by ``Settings.story_config``.

    Attributes:
        inline_media_bytes: media up to this size travel inline to the extractor.
    """

    story: StorySettings
    media: MediaLimits
    max_prompt_chars: int
    inline_media_bytes: int
