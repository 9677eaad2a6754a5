"""Long-video summaries: ``/api/video_summaries`` (preflight, submit, status, events,
exports, cancel). Thin over :mod:`serve_app.summaries`; the jobs run on the JobRunner.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response, StreamingResponse

from serve_app.http.api.schemas import error_responses
from serve_app.http.deps import CurrentUserOrApiKey, SummaryJobs
from serve_app.jobs.submit.listing import DEFAULT_LIMIT, MAX_LIMIT
from serve_app.summaries.downloads import export
from serve_app.summaries.events import summary_events
from serve_app.summaries.spec import SummaryRequest

router = APIRouter(prefix="/api/video_summaries", tags=["long-video summaries"])

SummaryId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The job_id that POST /api/video_summaries returned.",
    ),
]
_SUBMIT_ERRORS = {
    400: "Bad chunking, frames, language or model; refused input_url or callback_url; "
    "nothing uploaded yet; a clip outside the video",
    401: "No valid API token",
    402: "The estimate is above max_credits or the balance",
    403: "input_url is someone else's (or an expired) upload URL",
    413: "The video is beyond the size, duration or frame limits",
    422: "The video is corrupt or cannot be decoded",
    429: "Rate limited",
}
_ONE = error_responses({401: "No valid API token", 404: "No such summary", 429: "Rate limited"})


@router.post("/preflight", responses=error_responses(_SUBMIT_ERRORS))
async def preflight(
    body: SummaryRequest, user: CurrentUserOrApiKey, summaries: SummaryJobs
) -> dict[str, Any]:
    """A dry run: chunks, frames, estimated tokens and credits, and an ETA from the
    current backlog. Nothing is stored or charged."""
    return await summaries.preflight(user, body)


@router.post("", status_code=202, responses=error_responses(_SUBMIT_ERRORS))
async def submit(
    body: SummaryRequest, user: CurrentUserOrApiKey, summaries: SummaryJobs
) -> dict[str, Any]:
    """Start a summary job; follow ``events_url`` (SSE) or poll ``status_url``."""
    return await summaries.submit(user, body)


@router.get("", responses=_ONE)
def list_summaries(
    user: CurrentUserOrApiKey,
    summaries: SummaryJobs,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The caller's summaries, newest first (statuses without results)."""
    return summaries.list(user, limit)


@router.get("/{job_id}", responses=_ONE)
def summary_status(
    job_id: SummaryId, user: CurrentUserOrApiKey, summaries: SummaryJobs
) -> dict[str, Any]:
    """Status, progress, ETA and the result (the chunks so far while it runs)."""
    return summaries.status(user, job_id)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **_ONE},
)
async def summary_event_stream(
    job_id: SummaryId,
    user: CurrentUserOrApiKey,
    summaries: SummaryJobs,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=-1)] = None,
) -> StreamingResponse:
    """Server-Sent Events: ``status``, each ``chunk`` as it completes, then ``chapters``,
    ``summary`` and ``done`` (or ``error``). ``Last-Event-ID`` resumes after a chunk."""
    await asyncio.to_thread(summaries.record, user, job_id)  # 404 before streaming

    def load() -> Any:
        return summaries.record(user, job_id)

    return StreamingResponse(
        summary_events(summaries, load, -1 if last_event_id is None else last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/{job_id}/export.{fmt}",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}, "application/x-subrip": {}, "text/vtt": {}},
            "description": "The summary as a file (partial while the job runs).",
        },
        **error_responses(
            {
                400: "SRT chapters, or a translation variant without a language",
                401: "No valid API token",
                404: "No such summary",
            }
        ),
    },
)
def export_summary(
    job_id: SummaryId,
    fmt: Literal["json", "srt", "vtt"],
    user: CurrentUserOrApiKey,
    summaries: SummaryJobs,
    track: Literal["captions", "chapters", "speech"] = "captions",
    variant: Literal["source", "bilingual", "translation"] = "source",
) -> Response:
    """JSON, SRT or WebVTT (``track=chapters`` for WebVTT chapters, ``track=speech`` for
    the transcript as subtitles; ``variant`` for the translation or both languages)."""
    download = export(summaries, user, job_id, fmt, track, variant)
    return Response(
        download.body,
        media_type=download.media_type,
        headers={"Content-Disposition": download.content_disposition()},
    )


@router.delete("/{job_id}", responses=error_responses({409: "The summary already finished"}))
async def cancel_summary(
    job_id: SummaryId, user: CurrentUserOrApiKey, summaries: SummaryJobs
) -> dict[str, Any]:
    """Cancel a queued or running summary; its reserved credits are released."""
    return await summaries.cancel(user, job_id)
