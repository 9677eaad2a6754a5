"""One settings object for the whole service.

Values come from (highest first) explicit overrides (app builder args, tests),
environment variables prefixed ``SERVE_APP_`` (nested with ``__``, e.g.
``SERVE_APP_MEDIA__MAX_IMAGE_PIXELS``), then the defaults below, which are the
embedded CPU profile's. Model profiles are separate (``configs/models/*.yaml``).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serve_app.accounts.settings import AccountSettings, AdmissionSettings
from serve_app.analysis.settings import AnalysisSettings
from serve_app.chat.settings import ChatConfig, ChatSettings
from serve_app.jobs.settings import JobSettings
from serve_app.media.limits import MediaLimits
from serve_app.net.proxy_trust import check_proxy_entry
from serve_app.speech.settings import SpeechSettings
from serve_app.storage.node_dir import node_data_dir
from serve_app.story.settings import StoryConfig, StorySettings
from serve_app.summaries.settings import SummarySettings
from serve_app.uploads.settings import UploadSettings

#: The repository root when running from a checkout (configs/ lives there).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

MIB = 1024 * 1024

#: Pages served from this machine, any port: the embedded profile's CORS allow-list.
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
_ORIGIN = re.compile(
    r"\*|https?://[^/\s*:]+(:(\d{1,5}|\*))?|https?://\[[0-9a-f:.]+\](:(\d{1,5}|\*))?"
)


class HttpSettings(BaseModel):
    """The HTTP front: which other origins' pages may call the API (CORS), which proxies
    may name the client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Origins (``scheme://host[:port]``) whose pages may call the API with
    #: ``fetch``; ``:*`` matches any port, ``*`` any origin. Never with cookies:
    #: cross-origin callers send ``Authorization: Bearer``. Empty: no CORS at all.
    cors_allow_origins: list[str] = Field(default_factory=lambda: list(LOOPBACK_ORIGINS))

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        origins = [origin.strip().rstrip("/").lower() for origin in value]
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"not an origin (scheme://host[:port|:*]): {origin!r}")
        return origins

    #: Addresses or networks (``10.0.0.0/8``) of reverse proxies whose
    #: ``X-Forwarded-For`` names the client. Empty: the client is the socket's peer,
    #: for every per-address limit. ``serve-app serve`` starts Ray with
    #: ``FORWARDED_ALLOW_IPS`` set from it; a cluster started otherwise needs that
    #: variable in the environment of ``ray start`` (see docs/operations.md).
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        return [check_proxy_entry(entry) for entry in value]


class Settings(BaseSettings):
    """Service settings shared by the ingress and every deployment."""

    model_config = SettingsConfigDict(
        env_prefix="SERVE_APP_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    #: Where uploads, the tiny model and the default SQLite database live. Node-local:
    #: no other node reads it (``SERVE_APP_NODE_DATA_DIR`` relocates it per node, see
    #: :meth:`for_this_node`).
    data_dir: Path = Path(".data")
    #: Largest request body the ingress accepts (HTTP 413 beyond).
    max_request_bytes: int = Field(110 * MIB, ge=1)
    #: Media up to this size are read into the ingress's memory and travel inline;
    #: larger files are memory-mapped into Ray's object store (never into the ingress's
    #: heap) and land in the extractor node's spool. Neither needs a shared disk.
    inline_media_bytes: int = Field(128 * MIB, ge=0)
    default_prompt: str = "Describe this image."
    default_video_prompt: str = "Describe this video."
    default_interval: int = Field(10, ge=1)
    max_prompt_chars: int = Field(4000, ge=1)
    #: Most frames sampled from one video per request (thinned evenly beyond it);
    #: each model's pixel budget may cap it lower.
    max_frames_per_request: int = Field(32, ge=2, le=4096)
    #: Per-type file size, pixel and probe caps (``max_image_bytes``,
    #: ``max_video_bytes``, ``max_video_duration_s``, ...).
    media: MediaLimits = Field(default_factory=MediaLimits)
    #: The database (users, tokens, credits, jobs). Unset: SQLite in ``data_dir``.
    #: Also read from plain ``DATABASE_URL``; ``postgresql://`` URLs use psycopg 3.
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("SERVE_APP_DATABASE_URL", "DATABASE_URL", "database_url"),
    )
    #: Credits, sessions, API tokens, rate limits (``SERVE_APP_ACCOUNTS__*``).
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    #: Body deadlines and what one caller may hold at once (``SERVE_APP_ADMISSION__*``).
    admission: AdmissionSettings = Field(default_factory=AdmissionSettings)
    #: ``POST /analyze/``: cost, file caps, frame and token budgets (``SERVE_APP_STORY__*``).
    story: StorySettings = Field(default_factory=StorySettings)
    #: CORS allow-list (``SERVE_APP_HTTP__CORS_ALLOW_ORIGINS='["https://app.example"]'``).
    http: HttpSettings = Field(default_factory=HttpSettings)
    #: Log lines as JSON objects with the request id (``SERVE_APP_LOG_JSON=true``);
    #: text otherwise. Every replica configures the ``serve_app`` logger with it.
    log_json: bool = False
    #: Chunked uploads: chunk size, chunk count, TTL (``SERVE_APP_UPLOADS__*``).
    uploads: UploadSettings = Field(default_factory=UploadSettings)
    #: Batch video jobs: signed URLs, blob store, leases, prices (``SERVE_APP_JOBS__*``).
    jobs: JobSettings = Field(default_factory=JobSettings)
    #: Long-video summaries (chunking, concurrency, prices): ``SERVE_APP_SUMMARIES__*``.
    summaries: SummarySettings = Field(default_factory=SummarySettings)
    #: ``/v1/chat/completions``: price, message/media caps, URL fetching
    #: (``SERVE_APP_CHAT__*``).
    chat: ChatSettings = Field(default_factory=ChatSettings)
    #: Speech recognition on the ``AudioTranscriber`` deployment: backend
    #: (``pocketsphinx``, ``whisper``, ``off``), model, device, chunk length
    #: (``SERVE_APP_SPEECH__*``).
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    #: Directories whose files admins may analyse by ``file_path`` (resolved; empty:
    #: the feature is off). E.g. ``SERVE_APP_ALLOWED_MEDIA_ROOTS='["/srv/media"]'``.
    allowed_media_roots: list[Path] = Field(default_factory=list)

    def for_this_node(self) -> Settings:
        """These settings with ``data_dir`` where this node keeps its files.

        Replicas call it when they start: the bound ``data_dir`` was resolved by the
        driver, and ``SERVE_APP_NODE_DATA_DIR`` in a node's environment overrides it.
        """
        here = node_data_dir(self.data_dir)
        return self if here == self.data_dir else self.model_copy(update={"data_dir": here})

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def analysis(self) -> AnalysisSettings:
        """The ``POST /api/analyze`` use case's slice."""
        return AnalysisSettings(
            default_prompt=self.default_prompt,
            default_video_prompt=self.default_video_prompt,
            default_interval=self.default_interval,
            max_prompt_chars=self.max_prompt_chars,
            max_frames_per_request=self.max_frames_per_request,
            inline_media_bytes=self.inline_media_bytes,
            max_request_bytes=self.max_request_bytes,
            spool_dir=self.spool_dir,
            allowed_media_roots=tuple(self.allowed_media_roots),
            media=self.media,
        )

    @property
    def chat_config(self) -> ChatConfig:
        """The ``/v1`` chat use case's slice."""
        return ChatConfig(
            chat=self.chat,
            media=self.media,
            inline_media_bytes=self.inline_media_bytes,
            spool_dir=self.spool_dir,
        )

    @property
    def story_config(self) -> StoryConfig:
        """The Story API use case's slice."""
        return StoryConfig(
            story=self.story,
            media=self.media,
            max_prompt_chars=self.max_prompt_chars,
            inline_media_bytes=self.inline_media_bytes,
        )


def resolve_config_path(path: str | Path) -> Path:
    """Find a config file given relative to the working directory or the project root."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    in_project = PROJECT_ROOT / candidate
    if in_project.exists():
        return in_project
    raise FileNotFoundError(f"config file not found: {path}")
