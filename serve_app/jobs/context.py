"""Everything the job routes and the job runner need, built once per process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from serve_app.accounts.sessions import load_or_create_secret
from serve_app.accounts.settings import AccountSettings
from serve_app.engines.profile import ModelProfile
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.jobs.settings import JobSettings
from serve_app.jobs.store.job_store import JobStore
from serve_app.media.limits import MediaLimits
from serve_app.net.fetch import FetchPolicy, SafeHttp
from serve_app.storage.blob import BlobStore, LocalBlobStore, S3BlobStore
from serve_app.storage.db import Database
from serve_app.storage.signed_urls import UrlSigner, derive_key


class Settings(Protocol):
    """What jobs read of the root settings (:class:`serve_app.config.Settings` fits).

    A protocol, so this package does not import ``serve_app.config`` (a layer above).
    """

    @property
    def jobs(self) -> JobSettings: ...

    @property
    def media(self) -> MediaLimits: ...

    @property
    def accounts(self) -> AccountSettings: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def spool_dir(self) -> Path: ...

    @property
    def max_request_bytes(self) -> int: ...


def build_blob_store(settings: Settings) -> BlobStore:
    """The configured blob store (``jobs.blob_store``)."""
    jobs = settings.jobs
    if jobs.blob_store == "s3":
        s3 = jobs.s3
        return S3BlobStore(
            s3.bucket, prefix=s3.prefix, endpoint_url=s3.endpoint_url, region=s3.region
        )
    return LocalBlobStore(settings.data_dir / "blobs")


def url_signing_key(settings: Settings) -> bytes:
    """``jobs.url_secret``, else a key derived from the session secret (see signed_urls)."""
    if settings.jobs.url_secret is not None:
        return settings.jobs.url_secret.get_secret_value().encode()
    accounts = settings.accounts
    if accounts.session_secret is not None:
        base = accounts.session_secret.get_secret_value().encode()
    else:
        base = load_or_create_secret(settings.data_dir)
    return derive_key(base, "signed urls")


def fetch_policy(settings: Settings) -> FetchPolicy:
    fetch = settings.jobs.fetch
    return FetchPolicy(
        max_bytes=min(fetch.max_bytes, settings.media.max_video_bytes),
        connect_timeout_s=fetch.connect_timeout_s,
        read_timeout_s=fetch.read_timeout_s,
        total_timeout_s=fetch.total_timeout_s,
        max_redirects=fetch.max_redirects,
    )


@dataclass(frozen=True)
class JobsContext:
    """Services of the jobs domain.

    Attributes:
        profiles: vision-language models ``vlm`` catalog entries may use, by name.
        default_model: the one a ``vlm`` entry without ``model`` uses.
        wake: pokes the job runner after a submit (optional; it polls anyway).
    """

    settings: Settings
    store: JobStore
    blobs: BlobStore
    signer: UrlSigner
    catalog: FrameModelCatalog
    http: SafeHttp
    profiles: Mapping[str, ModelProfile] = field(default_factory=dict)
    default_model: str | None = None
    wake: Callable[[], object] | None = None

    @property
    def jobs(self) -> JobSettings:
        return self.settings.jobs

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        catalog: FrameModelCatalog,
        *,
        profiles: Mapping[str, ModelProfile] | None = None,
        default_model: str | None = None,
        blobs: BlobStore | None = None,
        http: SafeHttp | None = None,
        wake: Callable[[], object] | None = None,
    ) -> JobsContext:
        """Wire the services over an already migrated ``database``."""
        return cls(
            settings=settings,
            store=JobStore(database),
            blobs=blobs or build_blob_store(settings),
            signer=UrlSigner(url_signing_key(settings)),
            catalog=catalog,
            http=http or SafeHttp(fetch_policy(settings)),
            profiles=dict(profiles or {}),
            default_model=default_model,
            wake=wake,
        )
