"""Every typed dependency the routes and pages use, as ``Annotated`` aliases.

A route declares ``user: CurrentUser`` instead of ``Depends(...)``; the functions
behind the aliases live in :mod:`serve_app.http.auth` and :mod:`serve_app.http.context`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User
from serve_app.chat.service import ChatCompletions
from serve_app.http.auth import (
    current_admin,
    current_user,
    current_user_or_api_key,
    get_accounts,
    story_caller,
)
from serve_app.http.context import (
    AppContext,
    get_chat,
    get_chunk_store,
    get_context,
    get_jobs,
    get_request_id,
    get_story,
    get_summaries,
)
from serve_app.jobs.context import JobsContext
from serve_app.story.pipeline import StoryPipeline
from serve_app.summaries.service import Summaries
from serve_app.uploads.chunks import ChunkStore

Context = Annotated[AppContext, Depends(get_context)]
RequestId = Annotated[str, Depends(get_request_id)]
#: The Story API's models (only where the story routes are mounted).
Story = Annotated[StoryPipeline, Depends(get_story)]
#: Users, sessions, tokens, credits (``install_accounts``).
Accounts = Annotated[AccountsContext, Depends(get_accounts)]
#: The video inference jobs (only where the job routes are mounted).
Jobs = Annotated[JobsContext, Depends(get_jobs)]
#: Long-video summaries (mounted with the jobs).
SummaryJobs = Annotated[Summaries, Depends(get_summaries)]
#: The chunked-upload store, made on first use.
Chunks = Annotated[ChunkStore, Depends(get_chunk_store)]
#: The OpenAI-compatible ``/v1`` use case.
Chat = Annotated[ChatCompletions, Depends(get_chat)]
#: The caller (Bearer token or login session).
CurrentUser = Annotated[User, Depends(current_user)]
#: The caller, who must be an administrator (403 otherwise).
CurrentAdmin = Annotated[User, Depends(current_admin)]
#: Like :data:`CurrentUser`, also accepting ``?api_key=<token>`` (video-job routes).
CurrentUserOrApiKey = Annotated[User, Depends(current_user_or_api_key)]
#: The Story API's caller; ``None`` for an anonymous local request (``accounts.anonymous``).
StoryCaller = Annotated[User | None, Depends(story_caller)]
#: The optional ``Idempotency-Key`` request header.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Repeat a request safely: the first response is replayed, charged once.",
    ),
]
