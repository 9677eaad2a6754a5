"""The ``vlm`` captioner's per-frame requests and entries (over a ``ModelBackend``)."""

from __future__ import annotations

import logging
import time

import numpy as np

from serve_app.engines.backend import ModelBackend
from serve_app.engines.base import GenerationRequest, GenerationResult, SamplingParams
from serve_app.frame_models.resolved import CaptionModel
from serve_app.frame_models.results import Caption, FrameResult
from serve_app.media.resize import image_target_size, resize_rgb

logger = logging.getLogger(__name__)


def caption_request(frame: np.ndarray, model: CaptionModel) -> GenerationRequest:
    """A one-image request for ``frame``, resized to the model's image pixel budget."""
    height, width = image_target_size(frame.shape[0], frame.shape[1], model.profile.pixels)
    image = resize_rgb(np.ascontiguousarray(frame), (height, width))
    return GenerationRequest(
        prompt=model.prompt,
        images=(image,),
        sampling=SamplingParams(max_tokens=model.max_tokens),
    )


def caption_entry(result: GenerationResult, seconds: float) -> Caption:
    return {
        "time": round(seconds, 4),
        "text": result.text,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
    }


async def timed_caption(backend: ModelBackend, request: GenerationRequest) -> FrameResult:
    """``backend.generate(request)`` as a caption entry, or None when it failed."""
    started = time.perf_counter()
    try:
        result = await backend.generate(request)
    except Exception:
        logger.warning("captioning a frame failed", exc_info=True)
        return None
    return caption_entry(result, time.perf_counter() - started)
