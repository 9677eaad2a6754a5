"""The pixel budget of a vision-language model: how large its images and video frames get."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PixelBudget(BaseModel):
    """Qwen2.5-VL pixel limits (see ``serve_app.media.resize``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_min_pixels: int = Field(4 * 28 * 28, ge=28 * 28)
    image_max_pixels: int = Field(1280 * 28 * 28, ge=28 * 28)
    video_min_pixels: int = Field(128 * 28 * 28, ge=28 * 28)
    video_max_pixels: int = Field(768 * 28 * 28, ge=28 * 28)
    video_total_pixels: int = Field(24576 * 28 * 28, ge=28 * 28)
    max_frames: int = Field(32, ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> PixelBudget:
        if self.image_min_pixels > self.image_max_pixels:
            raise ValueError("image_min_pixels must be <= image_max_pixels")
        if self.video_min_pixels > self.video_max_pixels:
            raise ValueError("video_min_pixels must be <= video_max_pixels")
        return self
