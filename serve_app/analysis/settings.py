"""The analysis use case's slice of the service settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from serve_app.media.limits import MediaLimits


@dataclass(frozen=True)
class AnalysisSettings:
    """What ``POST /api/analyze`` reads; built by ``Settings.analysis``.

    Attributes:
        inline_media_bytes: media up to this size travel inline through Ray's object
            store; larger files by path (see :func:`serve_app.pipeline.protocol.media_ref_for`).
        max_frames_per_request: most frames sampled from one video per request.
        max_request_bytes: largest single-file upload.
        spool_dir: where uploads wait while they are analysed.
        allowed_media_roots: directories admins may analyse by ``file_path``.
    """

    default_prompt: str
    default_video_prompt: str
    default_interval: int
    max_prompt_chars: int
    max_frames_per_request: int
    inline_media_bytes: int
    max_request_bytes: int
    spool_dir: Path
    allowed_media_roots: tuple[Path, ...]
    media: MediaLimits
