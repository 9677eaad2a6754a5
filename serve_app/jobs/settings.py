"""Settings of batch video jobs: ``Settings.jobs`` (env ``SERVE_APP_JOBS__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MIB = 1024 * 1024


class S3Settings(BaseModel):
    """Where the S3 blob store keeps objects (credentials: the usual AWS environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = ""
    prefix: str = "serve_app/"
    endpoint_url: str | None = None
    region: str | None = None


class FetchSettings(BaseModel):
    """Limits for fetching a job's ``input_url`` and for posting callbacks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Largest input video fetched (the smaller of this and ``media.max_video_bytes``).
    max_bytes: int = Field(default=2048 * MIB, ge=1)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    #: Longest wait for the next bytes of a response.
    read_timeout_s: float = Field(default=30.0, gt=0)
    #: Longest whole download.
    total_timeout_s: float = Field(default=1800.0, gt=0)
    max_redirects: int = Field(default=3, ge=0, le=10)


class JobSettings(BaseModel):
    """Signed URLs, storage, leases, batching and prices of ``/videoinfer/`` jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Signs upload/result URLs and callbacks (32+ characters). Unset: derived from the
    #: per-data-directory session secret (set it when replicas share no data directory).
    url_secret: SecretStr | None = None
    #: Lifetime of a signed upload URL; it is also the input_url of the job.
    upload_url_ttl_s: int = Field(default=6 * 3600, ge=10)
    #: Lifetime of an ``output_signed_url`` (a fresh one comes with every status poll).
    result_url_ttl_s: int = Field(default=24 * 3600, ge=10)
    #: Base of the URLs the service hands out (e.g. ``https://api.example.com``); unset:
    #: taken from the request, which is right unless a proxy rewrites the host.
    public_base_url: str | None = None
    #: ``local`` (``data_dir/blobs``) or ``s3`` (needs ``pip install 'serve_app[s3]'``).
    blob_store: Literal["local", "s3"] = "local"
    s3: S3Settings = Field(default_factory=S3Settings)
    #: Largest upload (the smaller of this, ``media.max_video_bytes`` and, for uploads
    #: through the service, ``max_request_bytes`` applies).
    max_upload_bytes: int = Field(default=2048 * MIB, ge=1)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    #: Allowed ``infer_fps`` range (the video's own frame rate caps it too).
    min_infer_fps: float = Field(default=1.0, gt=0)
    max_infer_fps: float = Field(default=60.0, gt=0)
    #: Most frames one job may process (sampled frames, not source frames).
    max_frames_per_job: int = Field(default=50_000, ge=1)
    max_models_per_job: int = Field(default=8, ge=1, le=64)
    #: Credits per processed frame per model; ``model_prices`` overrides by model_id.
    credits_per_frame: int = Field(default=1, ge=0)
    model_prices: dict[str, int] = Field(default_factory=dict)
    #: A worker owns a running job this long past its last heartbeat.
    lease_s: float = Field(default=60.0, gt=0)
    #: How often a worker renews its lease while it works.
    heartbeat_s: float = Field(default=10.0, gt=0)
    #: Runs of a job (the first included) before it fails with ``worker_lost``.
    max_attempts: int = Field(default=3, ge=1, le=100)
    #: How often an idle worker looks for queued jobs.
    poll_interval_s: float = Field(default=1.0, gt=0)
    #: Jobs one JobRunner replica works on at once.
    concurrent_jobs: int = Field(default=2, ge=1, le=64)
    #: Frames sent to the models per call, and batches in flight at once.
    batch_frames: int = Field(default=16, ge=1, le=512)
    batches_in_flight: int = Field(default=2, ge=1, le=16)
    #: Largest side of frames handed to the models (boxes are mapped back to the
    #: original frame); 0 keeps full resolution.
    max_frame_side: int = Field(default=0, ge=0)
    #: Wall-clock budget for decoding one job's video.
    decode_timeout_s: float = Field(default=3600.0, gt=0)
    #: Tries to deliver a ``callback_url`` POST, with exponential backoff from this.
    callback_attempts: int = Field(default=5, ge=1, le=20)
    callback_backoff_s: float = Field(default=2.0, gt=0)

    @field_validator("url_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("url_secret needs at least 32 characters (e.g. openssl rand -hex 32)")
        return value

    def price(self, model_id: str) -> int:
        """Credits per frame for ``model_id``."""
        return self.model_prices.get(model_id, self.credits_per_frame)
