"""The ``/v1`` chat use case's settings: ``Settings.chat`` (env ``SERVE_APP_CHAT__*``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from serve_app.media.limits import MediaLimits

MIB = 1024 * 1024


class ChatFetchSettings(BaseModel):
    """Caps on fetching ``http(s)`` image and video URLs (through the SSRF guard)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Largest fetched file (the media type's own size cap applies too).
    max_bytes: int = Field(default=64 * MIB, ge=1)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    #: Longest whole download of one URL.
    total_timeout_s: float = Field(default=30.0, gt=0)
    max_redirects: int = Field(default=3, ge=0, le=10)
    #: Non-public networks that may be fetched anyway (CIDR, e.g. an internal media
    #: server's ``10.1.2.0/24``). Empty: public addresses only.
    allow_networks: list[str] = Field(default_factory=list)


class ChatSettings(BaseModel):
    """Limits and price of ``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Credits per completion choice; unset: ``accounts.analysis_cost``. Admins: free.
    cost: int | None = Field(default=None, ge=0)
    max_messages: int = Field(default=64, ge=1)
    #: Characters of text over all messages.
    max_text_chars: int = Field(default=32_000, ge=1)
    max_images: int = Field(default=8, ge=0)
    #: Videos per request (the engine contract takes one).
    max_videos: int = Field(default=1, ge=0, le=1)
    #: Frames of a video given as a list of images.
    max_listed_frames: int = Field(default=256, ge=2)
    #: ``n`` above 1 runs that many generations (non-streaming only).
    max_n: int = Field(default=4, ge=1, le=16)
    #: Video sampling when a request names none, and the caps of what it may ask for
    #: (``media_io_kwargs`` / ``mm_processor_kwargs``); the model's budget caps too.
    default_fps: float = Field(default=2.0, gt=0)
    max_fps: float = Field(default=8.0, gt=0)
    max_frames: int = Field(default=32, ge=2, le=4096)
    fetch: ChatFetchSettings = Field(default_factory=ChatFetchSettings)


@dataclass(frozen=True)
class ChatConfig:
    """What the use case reads of the settings; built by ``Settings.chat_config``."""

    chat: ChatSettings
    media: MediaLimits
    inline_media_bytes: int
    spool_dir: Path
