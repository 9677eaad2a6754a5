"""The application builder: ``serve_app.app:build_app``.

``serve run serve_app.app:build_app`` (no args) serves the embedded CPU profile: the
tiny offline Qwen2.5-VL on the transformers backend, for descriptions and stories.
``serve_config.yaml`` passes args that name GPU model profiles, and sets each
deployment's replicas and resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray.serve import Application

from serve_app.config import Settings, resolve_config_path
from serve_app.deployments.audio_transcriber import AudioTranscriber
from serve_app.deployments.detector import Detector
from serve_app.deployments.frame_extractor import FrameExtractor
from serve_app.deployments.ingress import Ingress
from serve_app.deployments.job_runner import JobRunner
from serve_app.deployments.options import deployment
from serve_app.deployments.story_writer import StoryWriter
from serve_app.deployments.vision_language_model import VisionLanguageModel
from serve_app.engines.factory import engine_factory
from serve_app.engines.profile import ModelProfile
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.speech.factory import SpeechEngineFactory

DEFAULT_MODEL_PROFILE = "configs/models/tiny-qwen2.5-vl.yaml"
DEFAULT_DETECTORS_CONFIG = "configs/detectors.yaml"
STORY_WRITER = "StoryWriter"


class ModelEntry(BaseModel):
    """One model to serve: its profile and how its deployment batches."""

    model_config = ConfigDict(extra="forbid")

    #: A YAML path (relative to the working directory or the project root) or inline.
    profile: str | ModelProfile
    #: Ray Serve deployment name; set it to tune this model in ``deployments:``.
    deployment_name: str | None = None
    max_batch_size: int = Field(8, ge=1, le=256)
    batch_wait_timeout_s: float = Field(0.01, ge=0, le=5)

    def load_profile(self) -> ModelProfile:
        if isinstance(self.profile, ModelProfile):
            return self.profile
        return ModelProfile.from_yaml(resolve_config_path(self.profile))


class AppArgs(BaseModel):
    """Typed builder args (``args:`` in a Serve config file)."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = Field(
        default_factory=lambda: [ModelEntry(profile=DEFAULT_MODEL_PROFILE)], min_length=1
    )
    #: Public name used when a request names no model; default: the first model.
    default_model: str | None = None
    #: The text model of the Story API (``POST /analyze/``), on its own ``StoryWriter``
    #: deployment; ``null`` turns the Story API off.
    story_model: ModelEntry | None = Field(
        default_factory=lambda: ModelEntry(profile=DEFAULT_MODEL_PROFILE)
    )
    #: The model catalog of batch video jobs (``/videoinfer/``), served by the
    #: ``Detector`` and ``JobRunner`` deployments; ``null`` turns video jobs off.
    #: Job settings (leases, prices, blob store) are ``settings.jobs``.
    detectors_config: str | None = DEFAULT_DETECTORS_CONFIG
    #: Overrides for :class:`serve_app.config.Settings` (env vars apply beneath them).
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _accept_plain_paths(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("models"), list):
            data = dict(data)
            data["models"] = [{"profile": m} if isinstance(m, str) else m for m in data["models"]]
        if isinstance(data, dict) and isinstance(data.get("story_model"), str):
            data = dict(data, story_model={"profile": data["story_model"]})
        return data


def deployment_name_for(index: int, entry: ModelEntry) -> str:
    if entry.deployment_name:
        return entry.deployment_name
    return "VisionLanguageModel" if index == 0 else f"VisionLanguageModel{index + 1}"


def build_app(args: AppArgs | dict[str, Any] | None = None) -> Application:
    """Compose Ingress → FrameExtractor → VisionLanguageModel(s), plus StoryWriter."""
    return build_graph(args)


def build_graph(
    args: AppArgs | dict[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Application:
    """:func:`build_app` with per-deployment ``.options(...)`` overrides by name.

    ``options`` (e.g. ``{"StoryWriter": {"num_replicas": 2}}``) does in code what the
    ``deployments:`` section of a Serve config does; tests and embedders use it. They
    are merged over each deployment's defaults (:mod:`serve_app.deployments.options`).
    """
    if not isinstance(args, AppArgs):
        args = AppArgs.model_validate(args or {})
    overrides = {name: dict(value) for name, value in (options or {}).items()}

    def named(cls: type, name: str) -> Any:
        return deployment(cls, name, overrides.pop(name, {}))

    settings = Settings(**args.settings)
    data_dir = str(Path(settings.data_dir).resolve())
    settings = settings.model_copy(update={"data_dir": Path(data_dir)})

    profiles: dict[str, ModelProfile] = {}
    handles: dict[str, Application] = {}
    for index, entry in enumerate(args.models):
        profile = entry.load_profile()
        if profile.name in profiles:
            raise ValueError(f"model name {profile.name!r} is configured twice")
        if not profile.multimodal:
            raise ValueError(f"model {profile.name!r} is text-only; it cannot describe media")
        profiles[profile.name] = profile
        handles[profile.name] = named(VisionLanguageModel, deployment_name_for(index, entry)).bind(
            engine_factory(profile, Path(data_dir)),
            profile,
            max_batch_size=entry.max_batch_size,
            batch_wait_timeout_s=entry.batch_wait_timeout_s,
            log_json=settings.log_json,
        )

    default_model = args.default_model or next(iter(profiles))
    if default_model not in profiles:
        raise ValueError(
            f"default_model {default_model!r} is not configured; models: {sorted(profiles)}"
        )
    vision_model = settings.story.vision_model
    if vision_model is not None and vision_model not in profiles:
        raise ValueError(
            f"story.vision_model {vision_model!r} is not configured; models: {sorted(profiles)}"
        )
    story_writer: Application | None = None
    story_profile: ModelProfile | None = None
    if args.story_model is not None:
        entry = args.story_model
        story_profile = entry.load_profile()
        story_writer = named(StoryWriter, entry.deployment_name or STORY_WRITER).bind(
            engine_factory(story_profile, Path(data_dir)),
            story_profile,
            max_batch_size=entry.max_batch_size,
            batch_wait_timeout_s=entry.batch_wait_timeout_s,
        )
    # Speech: an AudioTranscriber only when settings.speech.backend is not ``off``.
    audio_transcriber: Application | None = None
    if settings.speech.enabled:
        audio_transcriber = named(AudioTranscriber, "AudioTranscriber").bind(
            SpeechEngineFactory(settings.speech, Path(data_dir)),
            log_json=settings.log_json,
            data_dir=Path(data_dir),
        )
    catalog: FrameModelCatalog | None = None
    job_runner: Application | None = None
    if args.detectors_config is not None:
        catalog = FrameModelCatalog.from_yaml(resolve_config_path(args.detectors_config))
        detector = named(Detector, "Detector").bind(catalog)
        job_runner = named(JobRunner, "JobRunner").bind(
            settings,
            catalog,
            detector,
            handles,
            profiles,
            default_model,
            text_model=story_writer,
            text_profile=story_profile,
            **_speech_arg(audio_transcriber),
        )
    frame_extractor = named(FrameExtractor, "FrameExtractor").bind(
        settings.media, log_json=settings.log_json, data_dir=Path(data_dir)
    )
    ingress = named(Ingress, "Ingress")
    if overrides:
        raise ValueError(f"options name no deployment of this app: {sorted(overrides)}")
    return ingress.bind(
        frame_extractor,
        handles,
        profiles,
        default_model,
        settings,
        story_writer=story_writer,
        story_profile=story_profile,
        catalog=catalog,
        job_runner=job_runner,
        **_speech_arg(audio_transcriber),
    )


def _speech_arg(audio_transcriber: Application | None) -> dict[str, Application]:
    """``audio_transcriber=`` for the Ingress and JobRunner, only when speech is on."""
    return {} if audio_transcriber is None else {"audio_transcriber": audio_transcriber}
