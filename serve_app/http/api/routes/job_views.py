"""Views of a user's jobs for clients and the web page: the job list and input frames."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from serve_app.http.api.job_schemas import JobListResponse
from serve_app.http.api.routes.videoinfer import JobId
from serve_app.http.api.schemas import error_responses
from serve_app.http.deps import CurrentUserOrApiKey, Jobs
from serve_app.jobs.submit import frame_images, listing

router = APIRouter(tags=["video inference"])


@router.get(
    "/api/jobs",
    response_model=JobListResponse,
    responses=error_responses(
        {400: "limit out of range", 401: "No valid API token", 429: "Rate limited"}
    ),
)
def list_jobs(
    user: CurrentUserOrApiKey,
    jobs: Jobs,
    limit: Annotated[
        int, Query(ge=1, le=listing.MAX_LIMIT, description="How many jobs, newest first.")
    ] = listing.DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The caller's most recent jobs, newest first (``status`` as in GET /videoinfer/)."""
    return listing.list_jobs(jobs.store.database, user.id, limit)


@router.get(
    "/videoinfer/frame",
    response_class=Response,
    responses={
        200: {
            "content": {"image/jpeg": {}},
            "description": "The frame as JPEG; X-Frame-Width and X-Frame-Height give its "
            "size (the pixel space of the boxes in the job's results), X-Frame-Time its "
            "time in seconds.",
        },
        **error_responses(
            {
                400: "frame_offset is negative or beyond the video's last frame",
                401: "No valid API token",
                404: "No such job",
                410: "The job's input video is no longer stored (or came from input_url)",
                422: "The frame cannot be decoded (in the decode time limit)",
                429: "Rate limited",
            }
        ),
    },
)
async def job_frame(
    job_id: JobId,
    user: CurrentUserOrApiKey,
    jobs: Jobs,
    frame_offset: Annotated[
        int, Query(ge=0, description="A source frame index, as in the results' frame_offsets.")
    ],
) -> Response:
    """One frame of a job's input video, decoded as the job decoded it, as JPEG."""
    image = await frame_images.job_frame(jobs, user, job_id, frame_offset)
    headers = {
        "X-Frame-Width": str(image.width),
        "X-Frame-Height": str(image.height),
        "X-Frame-Time": f"{image.time_offset:.4f}",
        "Cache-Control": "private, max-age=3600",
    }
    return Response(image.jpeg, media_type="image/jpeg", headers=headers)
