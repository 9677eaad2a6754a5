"""A job's model spec resolved against the catalog once: everything a frame call needs.

:func:`resolve_model` checks a :class:`ModelSpec` (known model and version, right
type, valid ``inference_params``, a configured captioning model) and merges the
request's parameters into the entry's options, so per-batch and per-frame work reads
plain fields instead of resolving and parsing again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from serve_app.engines.profile import ModelProfile
from serve_app.errors import UnknownModel
from serve_app.frame_models.catalog import (
    CatalogEntry,
    DetectionOptions,
    DetectParams,
    FrameModelCatalog,
    VlmOptions,
    VlmParams,
)
from serve_app.frame_models.spec import ModelSpec


@dataclass(frozen=True)
class DetectorModel:
    """An object-detection model of a job, with the request's limits applied."""

    entry: CatalogEntry
    options: DetectionOptions
    confidence: float
    max_detections: int

    @property
    def model_id(self) -> str:
        return self.entry.model_id


@dataclass(frozen=True)
class CaptionModel:
    """A ``vlm`` captioner of a job: the model profile it runs on and its prompt."""

    entry: CatalogEntry
    profile: ModelProfile
    prompt: str
    max_tokens: int

    @property
    def model_id(self) -> str:
        return self.entry.model_id


FrameModel = DetectorModel | CaptionModel


def vlm_profile(
    entry: CatalogEntry, profiles: Mapping[str, ModelProfile], default_model: str | None
) -> ModelProfile:
    """The vision-language model profile a ``vlm`` catalog entry uses.

    Raises:
        UnknownModel: it names no configured model (or none is configured).
    """
    options = entry.parsed_options()
    assert isinstance(options, VlmOptions)
    name = options.model or default_model
    if name is None or name not in profiles:
        raise UnknownModel(
            f"model {entry.model_id!r} needs the vision-language model {name!r}, "
            f"which is not configured"
        )
    return profiles[name]


def detector_model(entry: CatalogEntry, spec: ModelSpec) -> DetectorModel:
    """``entry`` (an object detector that ``spec`` resolved to) with its limits."""
    options = entry.parsed_options()
    if not isinstance(options, DetectionOptions):
        raise UnknownModel(f"model {entry.model_id!r} is not an object-detection model")
    params = DetectParams.model_validate(spec.inference_params)
    return DetectorModel(
        entry=entry,
        options=options,
        confidence=options.confidence if params.confidence is None else params.confidence,
        max_detections=params.max_detections or options.max_detections,
    )


def resolve_model(
    catalog: FrameModelCatalog,
    spec: ModelSpec,
    profiles: Mapping[str, ModelProfile],
    default_model: str | None,
) -> FrameModel:
    """The model ``spec`` names, ready to run.

    Raises:
        UnknownModel: no such model, the wrong type, or an unconfigured captioner.
        InvalidRequest: unsupported ``inference_params``.
    """
    entry = catalog.resolve(spec)
    if entry.inference_type == "object-detection":
        return detector_model(entry, spec)
    profile = vlm_profile(entry, profiles, default_model)
    options = entry.parsed_options()
    assert isinstance(options, VlmOptions)
    params = VlmParams.model_validate(spec.inference_params)
    return CaptionModel(
        entry=entry,
        profile=profile,
        prompt=params.prompt or options.prompt,
        max_tokens=min(params.max_tokens or options.max_tokens, profile.max_new_tokens),
    )
