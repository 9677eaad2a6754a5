"""How the story model runs a request, and its readiness key."""

from __future__ import annotations

import dataclasses

from serve_app.engines.base import GenerationRequest
from serve_app.engines.chat import require_text_only
from serve_app.engines.profile import ModelProfile


def readiness_key(profile: ModelProfile) -> str:
    return f"story:{profile.name}"


def story_request(request: GenerationRequest, profile: ModelProfile) -> GenerationRequest:
    """``request`` as the story model runs it: text only, ``max_tokens`` within its profile.

    Raises:
        InvalidRequest: the request carries images or video.
    """
    require_text_only(request, profile.name)
    if request.sampling.max_tokens <= profile.max_new_tokens:
        return request
    sampling = dataclasses.replace(request.sampling, max_tokens=profile.max_new_tokens)
    return dataclasses.replace(request, sampling=sampling)
