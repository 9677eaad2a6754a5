"""Helpers of the summary tests: a witness around the real tiny model, contexts, videos."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User
from serve_app.config import Settings
from serve_app.engines.backend import EngineBackend
from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.jobs.context import JobsContext
from serve_app.jobs.settings import JobSettings
from serve_app.speech.backend import SpeechBackend
from serve_app.summaries.executor import SummaryExecutor
from serve_app.summaries.service import Summaries
from serve_app.summaries.settings import SummarySettings
from tests.jobs.support import FAST_JOBS, jobs_context
from tests.support.media_files import decode_index

EMPTY_CATALOG = FrameModelCatalog(models=[])
#: Leases short enough that a killed worker's job is requeued within a test.
KILLABLE_JOBS = {"lease_s": 3.0, "heartbeat_s": 0.2, "poll_interval_s": 0.1, "max_attempts": 5}


def worker_settings(data_dir: Path) -> Settings:
    """Settings of the worker process and of the test that resumes its job."""
    return Settings(data_dir=data_dir, jobs=JobSettings(**{**FAST_JOBS, **KILLABLE_JOBS}))


class Witness:
    """The real engine, recording what each caption request showed it.

    Not a stand-in: every request runs on the wrapped engine. ``seen`` maps a chunk's
    request id to the source frame indices decoded from the pixels the model got
    (tests/support/media_files.py's counter frames), so a test can compare them with
    the indices the result reports.
    """

    def __init__(self, engine: Engine, gate: asyncio.Event | None = None) -> None:
        self.backend = EngineBackend(engine)
        self.seen: dict[str, list[int]] = {}
        self.prompts: dict[str, str] = {}
        self.texts = 0
        self.text_prompts: list[str] = []
        self.gate = gate

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        if request.video is not None:
            if self.gate is not None:
                await self.gate.wait()
            self.seen[request.request_id] = [decode_index(f) for f in request.video.frames]
            self.prompts[request.request_id] = request.prompt
        else:
            self.texts += 1
            self.text_prompts.append(request.prompt)
        return await self.backend.generate(request)

    async def ready(self) -> bool:
        return await self.backend.ready()


def summary_context(
    accounts: AccountsContext, data_dir: Path, profile: ModelProfile, **jobs: Any
) -> JobsContext:
    ctx = jobs_context(accounts, data_dir, EMPTY_CATALOG, **jobs)
    return JobsContext(
        settings=ctx.settings,
        store=ctx.store,
        blobs=ctx.blobs,
        signer=ctx.signer,
        catalog=ctx.catalog,
        http=ctx.http,
        profiles={profile.name: profile},
        default_model=profile.name,
    )


def executor(
    ctx: JobsContext,
    profile: ModelProfile,
    witness: Witness,
    speech: SpeechBackend | None = None,
    **settings: Any,
) -> SummaryExecutor:
    summary = SummarySettings(**settings)
    return SummaryExecutor(ctx, summary, {profile.name: witness}, witness, 4096, speech)


def summaries(ctx: JobsContext, speech: bool = False, **settings: Any) -> Summaries:
    return Summaries(ctx, SummarySettings(**settings), speech)


def signed_upload(ctx: JobsContext, user: User, video: Path) -> str:
    """Upload ``video`` as ``user`` would through a signed URL; returns that URL."""
    key = f"uploads/{user.id}-{video.stem}.mp4"
    ctx.blobs.put_bytes(key, video.read_bytes())
    params = ctx.signer.sign("PUT", key, user.id, 3600)
    return f"http://127.0.0.1:8000/{key}?{params.query()}"
