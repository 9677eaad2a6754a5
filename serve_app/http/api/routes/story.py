"""``POST /analyze/``: an English story plus a translation from images or a video."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse

from serve_app.accounts.charging import charge
from serve_app.accounts.idempotency import file_sha256, fingerprint
from serve_app.http.api.schemas import error_responses
from serve_app.http.api.story_schemas import StoryResponse, story_body
from serve_app.http.auth import replay_response
from serve_app.http.deps import Accounts, Context, IdempotencyKey, RequestId, Story, StoryCaller
from serve_app.pipeline.speech import AudioMode
from serve_app.storage.spool import spooled
from serve_app.story.service import StoryParams, check_file_count, prepare_story, tell_story

router = APIRouter(tags=["story"])

#: Names the parts of the story that reached their token limit and were trimmed.
TRUNCATED_HEADER = "X-Story-Truncated"

_ERRORS = error_responses(
    {
        400: "No file, too many files, images mixed with a video, several videos, a file "
        "over its size limit (named in the detail), unsupported type, bad prompt or language",
        401: "No valid API token or login session",
        402: "Not enough credits (nothing was run)",
        403: "Login-session request without X-CSRF-Token",
        409: "A request with the same Idempotency-Key is still running",
        413: "Request too large, or media beyond the pixel, duration or frame caps",
        422: "Corrupt, truncated or undecodable media; or Idempotency-Key reused",
        429: "Rate limited (see Retry-After)",
        502: "A model produced no usable answer (e.g. an empty story)",
        503: "A model backend is unavailable or overloaded (see Retry-After)",
    }
)


@router.post("/analyze/", response_model=StoryResponse, responses=_ERRORS)
async def write_story(
    ctx: Context,
    story: Story,
    accounts: Accounts,
    user: StoryCaller,
    request_id: RequestId,
    files: Annotated[
        list[UploadFile],
        File(description="One or more images (JPEG, PNG, WebP) or exactly one video."),
    ],
    prompt: Annotated[
        str | None, Form(description="Guides the story; default: a short, warm story.")
    ] = None,
    language: Annotated[
        str | None, Form(description="BCP-47 tag of the translation (default 'th').")
    ] = None,
    audio: Annotated[
        str | None,
        Form(
            description="Video: 'off' (default) or 'transcribe' (the speech joins the "
            "observation and the response's transcript; needs settings.speech)."
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Costs ``story.cost`` credits (admins: free); refunded when the story fails.

    Without credentials it runs only in local anonymous mode (loopback only, see
    ``accounts.anonymous_story``): rate-limited, not charged."""
    settings = ctx.settings
    check_file_count(len(files), settings.story)
    async with contextlib.AsyncExitStack() as stack:
        uploads = [
            await stack.enter_async_context(
                spooled(f, settings.spool_dir, f.filename or "", settings.max_request_bytes)
            )
            for f in files
        ]
        plan = await prepare_story(
            uploads, StoryParams(prompt, language, audio), settings.story_config, ctx.speech
        )
        if user is None:
            with accounts.in_flight.track():
                outcome = await tell_story(
                    story, plan, settings.story_config, request_id=request_id, speech=ctx.speech
                )
            return _story_response(story_body(outcome), outcome.truncated)
        digests = await asyncio.gather(*(asyncio.to_thread(file_sha256, u.path) for u in uploads))
        # ``audio`` joins the fingerprint only when set, so older keys stay valid.
        audio_fp = () if plan.audio is AudioMode.OFF else (plan.audio.value,)
        request_fp = fingerprint("POST /analyze/", prompt, plan.language.code, *digests, *audio_fp)
        async with charge(
            accounts,
            user,
            cost=settings.story.cost,
            reason="story",
            idempotency_key=idempotency_key,
            fingerprint=request_fp,
        ) as bill:
            if bill.replay is not None:
                return replay_response(bill.replay)
            with accounts.in_flight.track():
                outcome = await tell_story(
                    story, plan, settings.story_config, request_id=request_id, speech=ctx.speech
                )
            body = story_body(outcome)
            bill.record(body)
    return _story_response(body, outcome.truncated)


def _story_response(body: dict[str, Any], truncated: Sequence[str]) -> JSONResponse:
    headers = {TRUNCATED_HEADER: ", ".join(truncated)} if truncated else {}
    return JSONResponse(body, headers=headers)
