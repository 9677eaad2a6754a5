"""The body of ``GET /api/capabilities``: what this service offers, to build forms with.

Sizes are in bytes, costs in credits (administrators pay nothing).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from serve_app.frame_models.spec import InferenceType


class AnalysisCapabilities(BaseModel):
    """``POST /api/analyze``."""

    models: list[str] = Field(description="Names accepted as model_path.")
    default_model: str
    default_interval: int = Field(description="Videos: every interval-th frame is sampled.")
    default_prompt: str = Field(description="The prompt for images when none is sent.")
    default_video_prompt: str = Field(description="The prompt for videos when none is sent.")
    max_prompt_chars: int
    max_image_bytes: int = Field(description="Largest image (send chunks above max_request_bytes).")
    max_video_bytes: int = Field(description="Largest video (send chunks above max_request_bytes).")
    analysis_cost: int = Field(description="Credits one analysis costs.")


class UploadCapabilities(BaseModel):
    """Chunked uploads to ``POST /api/analyze`` (``upload_id``, ``chunk_number``, ...)."""

    chunk_bytes: int = Field(description="Recommended chunk size.")
    max_chunk_bytes: int = Field(description="Largest chunk one request may carry.")
    max_upload_bytes: int = Field(description="Largest file in chunks (by type, see analysis).")
    max_chunks: int = Field(description="Most chunks one upload may have.")
    max_request_bytes: int = Field(description="Largest request body; bigger files need chunks.")


class LanguageOption(BaseModel):
    tag: str = Field(description="BCP-47 tag, e.g. 'ja' or 'pt-BR'.")
    name: str = Field(description="English name, e.g. 'Japanese'.")


class StoryCapabilities(BaseModel):
    """``POST /analyze/`` (stories and translations)."""

    languages: list[LanguageOption] = Field(
        description="Translation targets; a region may be added to a tag (fr-CA)."
    )
    default_language: str | None = Field(description="The target when a request names none.")
    max_images: int = Field(description="Most images in one request (or one video).")
    max_image_bytes: int
    max_video_bytes: int
    cost: int = Field(description="Credits one story costs.")


class JobModelOption(BaseModel):
    """A model of the job catalog (``configs/detectors.yaml``)."""

    model_id: str
    versions: list[str] = Field(description="Accepted model_version values, catalog order.")
    default_version: str = Field(description="The version used when a request names none.")
    inference_type: InferenceType
    description: str
    credits_per_frame: int = Field(description="Credits per processed frame.")


class JobCapabilities(BaseModel):
    """Batch video inference jobs (``/videoinfer/``)."""

    models: list[JobModelOption]
    default_infer_fps: float
    min_infer_fps: float
    max_infer_fps: float = Field(description="The video's own frame rate caps it too.")
    max_models_per_job: int
    max_frames_per_job: int = Field(description="Most sampled frames one job may process.")
    max_upload_bytes: int = Field(description="Largest video uploaded to a signed URL.")
    video_extensions: list[str] = Field(description="File name endings of accepted videos.")


class CapabilitiesResponse(BaseModel):
    analysis: AnalysisCapabilities
    uploads: UploadCapabilities
    story: StoryCapabilities | None = Field(description="null: the Story API is not mounted.")
    jobs: JobCapabilities | None = Field(description="null: video jobs are not mounted.")
