"""Settings of chunked uploads: ``Settings.uploads`` (env ``SERVE_APP_UPLOADS__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class UploadSettings(BaseModel):
    """Limits and lifetimes of chunked uploads (``POST /api/analyze`` with ``upload_id``).

    The total size of one upload is capped by the media limits of its type
    (``media.max_video_bytes`` / ``media.max_image_bytes``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Largest chunk (one request's ``file`` part); keep it well below
    #: ``max_request_bytes``: Ray's HTTP proxy holds each request body in memory.
    max_chunk_bytes: int = Field(default=32 * MIB, ge=1)
    #: Chunk size recommended to clients (``GET /api/capabilities``, the web page);
    #: capped at ``max_chunk_bytes`` there.
    chunk_bytes: int = Field(default=8 * MIB, ge=1)
    #: Most chunks one upload may declare (``total_chunks``).
    max_chunks: int = Field(default=4096, ge=1)
    #: An unfinished upload with no new chunk for this long is removed; its chunks
    #: then get 410. Completed uploads keep their result this long too.
    ttl_s: float = Field(default=24 * 3600.0, gt=0)
    #: Unfinished uploads one user may have at once (HTTP 429 beyond).
    max_open_uploads: int = Field(default=8, ge=1)
    #: An assembly + analysis running longer than this is presumed dead; re-sending a
    #: chunk then starts it again. Behind the ingress, claims are also owner-leased: a
    #: crashed replica's claim goes stale after ``accounts.hold_lease_s`` (30 s).
    finalize_timeout_s: float = Field(default=3600.0, gt=0)
    #: How often, at most, each ingress replica sweeps expired uploads.
    cleanup_interval_s: float = Field(default=300.0, gt=0)
