"""What the ingress needs from the model graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from serve_app.engines.base import GenerationResult, SamplingParams
from serve_app.media.sampling import SamplingSpec

#: Media travel either inline (bytes, through the object store) or as a path on a
#: file system every replica can read.
MediaRef = bytes | Path


@dataclass(frozen=True)
class DescribeJob:
    """One image or video to describe with one model."""

    media: MediaRef
    prompt: str
    model: str
    spec: SamplingSpec
    sampling: SamplingParams = field(default_factory=SamplingParams)
    request_id: str = ""


class Pipeline(Protocol):
    """Frames → vision-language model, wherever those run."""

    @property
    def model_names(self) -> tuple[str, ...]:
        """Public names of the configured models."""
        ...

    @property
    def default_model(self) -> str: ...

    async def describe(self, job: DescribeJob) -> GenerationResult:
        """Extract frames from ``job.media`` and describe them with ``job.model``."""
        ...

    async def readiness(self) -> dict[str, bool]:
        """Each component's readiness (models loaded and healthy)."""
        ...
