"""What the routes depend on, from the app's state (the aliases are in ``deps``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from serve_app.chat.service import ChatCompletions
from serve_app.config import Settings
from serve_app.http.auth import get_accounts
from serve_app.jobs.context import JobsContext
from serve_app.pipeline.protocol import Pipeline
from serve_app.speech.backend import SpeechBackend
from serve_app.story.pipeline import StoryPipeline
from serve_app.summaries.service import Summaries
from serve_app.uploads.chunks import ChunkStore


@dataclass(frozen=True)
class AppContext:
    """What every route may use; built once per app by :func:`create_app`."""

    pipeline: Pipeline
    settings: Settings
    #: The Story API's models; ``None`` when the story routes are not mounted.
    story: StoryPipeline | None = None
    #: Speech recognition for ``audio=transcribe``; ``None`` when speech is off.
    speech: SpeechBackend | None = None


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def get_story(request: Request) -> StoryPipeline:
    story = get_context(request).story
    if story is None:
        raise RuntimeError("the story routes are mounted only with a story pipeline")
    return story


def get_request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def mounted_jobs(request: Request) -> JobsContext | None:
    """The app's video jobs, or None when they are not mounted (``install_jobs``)."""
    jobs = getattr(request.app.state, "jobs", None)
    return jobs if isinstance(jobs, JobsContext) else None


def get_jobs(request: Request) -> JobsContext:
    jobs = mounted_jobs(request)
    if jobs is None:
        raise RuntimeError("install_jobs(app, jobs) was not called")
    return jobs


def get_summaries(request: Request) -> Summaries:
    summaries = getattr(request.app.state, "summaries", None)
    if not isinstance(summaries, Summaries):
        raise RuntimeError("install_jobs(app, jobs, summary_settings) was not called")
    return summaries


def base_url(request: Request) -> str:
    """This app's public root URL as the client reached it (route prefix included)."""
    return str(request.base_url)


async def get_chunk_store(request: Request) -> ChunkStore:
    """The app's chunk store, made on first use (async: no two are made at once).

    Its claims are owner-leased like credit holds: renewed on the accounts' lease beat,
    so a killed replica's claim is taken over within ``accounts.hold_lease_s``.
    """
    store = getattr(request.app.state, "chunk_store", None)
    if not isinstance(store, ChunkStore):
        settings = get_context(request).settings
        leases = get_accounts(request).leases
        store = ChunkStore(
            settings.uploads_dir, settings.uploads, settings.media, claim_lease_s=leases.lease_s
        )
        leases.add_hook(store.renew_claims)
        request.app.state.chunk_store = store
    return store


def get_chat(request: Request) -> ChatCompletions:
    """The ``/v1`` use case, made on first use over the app's pipeline and accounts."""
    chat = getattr(request.app.state, "chat", None)
    if not isinstance(chat, ChatCompletions):
        context = get_context(request)
        story = context.story
        chat = ChatCompletions(
            context.pipeline,
            get_accounts(request),
            context.settings.chat_config,
            text_models=(story.writer,) if story is not None else (),
            speech=context.speech,
        )
        request.app.state.chat = chat
    return chat
