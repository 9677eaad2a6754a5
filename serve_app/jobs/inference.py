"""How the runner reaches the per-frame models, and the ``vlm`` captioner's entries.

:class:`FrameModels` is implemented twice: in process (tests, scripts;
:class:`LocalFrameModels`) and over Ray Serve handles (``deployments/``). Either way a
call takes one batch of frames for one model and returns one entry per frame, ``None``
for a frame that failed; it raises only when the whole call failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from serve_app.detectors.config import CatalogEntry, ModelCatalog, VlmOptions, VlmParams
from serve_app.detectors.registry import DetectorRegistry, FrameResult
from serve_app.engines.base import Engine, GenerationRequest, GenerationResult, SamplingParams
from serve_app.engines.profile import ModelProfile
from serve_app.errors import UnknownModel
from serve_app.jobs.spec import ModelSpec
from serve_app.media.resize import image_target_size, resize_rgb

logger = logging.getLogger(__name__)


class FrameModels(Protocol):
    """Runs one model over one batch of frames."""

    async def run(
        self, spec: ModelSpec, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        """One entry (or None) per frame of ``frames`` ``(T, H, W, 3)``.

        Args:
            original_size: ``(width, height)`` of the source video's frames.
        """
        ...


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


def caption_request(
    frame: np.ndarray, profile: ModelProfile, entry: CatalogEntry, spec: ModelSpec
) -> GenerationRequest:
    """A one-image request for ``frame``, resized to the model's image pixel budget."""
    options = entry.parsed_options()
    assert isinstance(options, VlmOptions)
    params = VlmParams.model_validate(spec.inference_params)
    height, width = image_target_size(frame.shape[0], frame.shape[1], profile.pixels)
    image = resize_rgb(np.ascontiguousarray(frame), (height, width))
    max_tokens = min(params.max_tokens or options.max_tokens, profile.max_new_tokens)
    return GenerationRequest(
        prompt=params.prompt or options.prompt,
        images=(image,),
        sampling=SamplingParams(max_tokens=max_tokens),
    )


def caption_entry(result: GenerationResult, seconds: float) -> dict[str, Any]:
    return {
        "time": round(seconds, 4),
        "text": result.text,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
    }


async def timed_generate(generate: Any, request: GenerationRequest) -> FrameResult:
    """``await generate(request)`` as a caption entry, or None when it failed."""
    started = time.perf_counter()
    try:
        result: GenerationResult = await generate(request)
    except Exception:
        logger.warning("captioning a frame failed", exc_info=True)
        return None
    return caption_entry(result, time.perf_counter() - started)


class LocalFrameModels:
    """Detectors and captioning engines in this process (tests, scripts, benchmarks)."""

    def __init__(
        self,
        catalog: ModelCatalog,
        engines: Mapping[str, tuple[ModelProfile, Engine]] | None = None,
        default_model: str | None = None,
    ) -> None:
        self.catalog = catalog
        self.registry = DetectorRegistry(catalog)
        self._engines = dict(engines or {})
        self._profiles = {name: profile for name, (profile, _) in self._engines.items()}
        self._default = default_model or next(iter(self._engines), None)

    async def run(
        self, spec: ModelSpec, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        entry = self.catalog.resolve(spec)
        if entry.inference_type == "object-detection":
            return await asyncio.to_thread(self.registry.run, spec, frames, original_size)
        profile = vlm_profile(entry, self._profiles, self._default)
        engine = self._engines[profile.name][1]
        requests = [caption_request(frame, profile, entry, spec) for frame in frames]
        return list(await asyncio.gather(*(timed_generate(engine.generate, r) for r in requests)))
