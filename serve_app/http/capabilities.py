"""What this service offers (``GET /api/capabilities``), built from its real settings.

:func:`describe_capabilities` is pure: the route and the server-rendered web pages
call it with the app's :class:`AppContext` and, when video jobs are mounted, their
:class:`JobsContext`. Every value comes from the settings, the model pipeline, the
story language table and the job model catalog; nothing here is a copy of a default.
"""

from __future__ import annotations

from typing import get_args

from serve_app.config import Settings
from serve_app.errors import InvalidRequest, UnknownModel
from serve_app.frame_models.catalog import (
    CatalogEntry,
    DetectionOptions,
    HaarOptions,
    OnnxOptions,
    VlmOptions,
)
from serve_app.frame_models.resolved import vlm_profile
from serve_app.frame_models.spec import InferenceType, ModelSpec
from serve_app.http.capability_schemas import (
    AnalysisCapabilities,
    CapabilitiesResponse,
    JobCapabilities,
    JobModelOption,
    LanguageOption,
    StoryCapabilities,
    UploadCapabilities,
)
from serve_app.http.context import AppContext
from serve_app.jobs.context import JobsContext
from serve_app.jobs.spec import JobRequest
from serve_app.jobs.submit.uploads import VIDEO_EXTENSIONS, upload_limit
from serve_app.story.languages import LANGUAGES, resolve_language
from serve_app.story.service import story_limits

#: Room for the other form fields and the multipart framing of one chunk request,
#: which ``max_request_bytes`` bounds as a whole.
FORM_OVERHEAD_BYTES = 64 * 1024


def _analysis(context: AppContext) -> AnalysisCapabilities:
    settings, pipeline = context.settings, context.pipeline
    return AnalysisCapabilities(
        models=list(pipeline.model_names),
        default_model=pipeline.default_model,
        default_interval=settings.default_interval,
        default_prompt=settings.default_prompt,
        default_video_prompt=settings.default_video_prompt,
        max_prompt_chars=settings.max_prompt_chars,
        max_image_bytes=settings.media.max_image_bytes,
        max_video_bytes=settings.media.max_video_bytes,
        analysis_cost=settings.accounts.analysis_cost,
    )


def _uploads(settings: Settings) -> UploadCapabilities:
    uploads, media = settings.uploads, settings.media
    max_chunk = min(
        uploads.max_chunk_bytes, max(1, settings.max_request_bytes - FORM_OVERHEAD_BYTES)
    )
    return UploadCapabilities(
        chunk_bytes=min(uploads.chunk_bytes, max_chunk),
        max_chunk_bytes=max_chunk,
        max_upload_bytes=max(media.max_image_bytes, media.max_video_bytes),
        max_chunks=uploads.max_chunks,
        max_request_bytes=settings.max_request_bytes,
    )


def _story(settings: Settings) -> StoryCapabilities:
    limits = story_limits(settings.story_config)
    try:
        default: str | None = resolve_language(settings.story.default_language).code
    except InvalidRequest:
        default = None
    return StoryCapabilities(
        languages=[LanguageOption(tag=tag, name=name) for tag, name in LANGUAGES.items()],
        default_language=default,
        max_images=settings.story.max_images,
        max_image_bytes=limits.max_image_bytes,
        max_video_bytes=limits.max_video_bytes,
        cost=settings.story.cost,
    )


def model_description(entry: CatalogEntry, jobs: JobsContext) -> str:
    """A one-line description of a catalog entry, from its implementation and options."""
    options = entry.parsed_options()
    if isinstance(options, VlmOptions):
        model = options.model or jobs.default_model
        return f"A caption per frame from the vision-language model {model}"
    assert isinstance(options, DetectionOptions)
    if isinstance(options, OnnxOptions):
        classes = ", ".join(options.class_names) or options.class_name
        return f"Boxes of {classes} (ONNX detector {options.path.name})"
    if isinstance(options, HaarOptions):
        return f"Boxes of {options.class_name} (OpenCV Haar cascade {options.cascade})"
    return f"Boxes of {options.class_name} (OpenCV HOG detector)"


def _usable(entry: CatalogEntry, jobs: JobsContext) -> bool:
    """False for a ``vlm`` entry whose vision-language model is not configured."""
    if entry.inference_type != "vlm":
        return True
    try:
        vlm_profile(entry, jobs.profiles, jobs.default_model)
    except UnknownModel:
        return False
    return True


def _default_entry(jobs: JobsContext, model_id: str) -> CatalogEntry | None:
    """The entry a request without ``model_version`` gets (None: it cannot run)."""
    for inference_type in get_args(InferenceType):
        try:
            entry = jobs.catalog.resolve(
                ModelSpec(model_id=model_id, inference_type=inference_type)
            )
        except UnknownModel:
            continue
        return entry if _usable(entry, jobs) else None
    return None


def job_models(jobs: JobsContext) -> list[JobModelOption]:
    """The catalog's models that jobs can run, one option per ``model_id``."""
    options = []
    for model_id in dict.fromkeys(entry.model_id for entry in jobs.catalog.models):
        default = _default_entry(jobs, model_id)
        if default is None:
            continue
        versions = [
            e.model_version
            for e in jobs.catalog.models
            if e.model_id == model_id
            and e.inference_type == default.inference_type
            and _usable(e, jobs)
        ]
        options.append(
            JobModelOption(
                model_id=model_id,
                versions=versions,
                default_version=default.model_version,
                inference_type=default.inference_type,
                description=model_description(default, jobs),
                credits_per_frame=jobs.jobs.price(model_id),
            )
        )
    return options


def _jobs(jobs: JobsContext) -> JobCapabilities:
    settings = jobs.jobs
    return JobCapabilities(
        models=job_models(jobs),
        default_infer_fps=JobRequest.model_fields["infer_fps"].default,
        min_infer_fps=settings.min_infer_fps,
        max_infer_fps=settings.max_infer_fps,
        max_models_per_job=settings.max_models_per_job,
        max_frames_per_job=settings.max_frames_per_job,
        max_upload_bytes=upload_limit(jobs),
        video_extensions=list(VIDEO_EXTENSIONS),
    )


def describe_capabilities(context: AppContext, jobs: JobsContext | None) -> CapabilitiesResponse:
    """What the app built around ``context`` (and ``jobs``, when mounted) offers."""
    return CapabilitiesResponse(
        analysis=_analysis(context),
        uploads=_uploads(context.settings),
        story=_story(context.settings) if context.story is not None else None,
        jobs=_jobs(jobs) if jobs is not None else None,
    )
