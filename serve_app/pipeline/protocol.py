"""What the ingress needs from the model graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from serve_app.engines.base import GenerationResult, SamplingParams
from serve_app.media.extract import MediaInfo
from serve_app.media.sampling import SamplingSpec
from serve_app.storage.spool import SpooledFile

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
    #: What the ingress's probe found, so the extractor need not probe again.
    media_info: MediaInfo | None = None


def media_ref_for(upload: SpooledFile, inline_media_bytes: int) -> MediaRef:
    """Small files travel inline (any node can read them); large ones by path."""
    if upload.size <= inline_media_bytes:
        return upload.path.read_bytes()
    return upload.path


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
