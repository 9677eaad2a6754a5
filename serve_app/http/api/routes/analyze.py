"""``POST /api/analyze`` (one file, chunks, or an admin's file_path) and upload status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse

from serve_app.analysis.params import AnalyzeParams
from serve_app.analysis.submit import (
    AnalysisServices,
    AnalyzeForm,
    submit_analysis,
    upload_status,
)
from serve_app.http.api.schemas import AnalyzeResponse, error_responses
from serve_app.http.api.upload_schemas import UploadProgress, UploadStatus
from serve_app.http.auth import REPLAY_HEADER
from serve_app.http.deps import Accounts, Chunks, Context, CurrentUser, IdempotencyKey, RequestId
from serve_app.uploads.state import UploadState

router = APIRouter(prefix="/api", tags=["analysis"])


_ANALYZE_ERRORS = error_responses(
    {
        400: "Bad parameters or chunk fields, unknown model, unsupported media type, "
        "chunk_sha256 mismatch",
        401: "No valid API token or login session",
        402: "Not enough credits (nothing was run)",
        403: "Login-session request without X-CSRF-Token; file_path for non-admins, "
        "disabled, or outside the allowed roots",
        404: "file_path does not exist",
        409: "Same Idempotency-Key still running; chunk re-sent with other bytes; "
        "total_chunks or filename changed; upload being analysed by another request",
        410: "The upload expired or was discarded (start again with a new upload_id)",
        413: "File, chunk or upload too large, or media beyond the probe caps",
        422: "Corrupt, truncated, empty or undecodable media; or Idempotency-Key reused",
        429: "Rate limited, or too many unfinished uploads (see Retry-After)",
        502: "The model produced no usable answer",
        503: "A model backend is unavailable or overloaded (see Retry-After)",
    }
)


@router.post("/analyze", response_model=AnalyzeResponse | UploadProgress, responses=_ANALYZE_ERRORS)
async def analyze_media(
    ctx: Context,
    accounts: Accounts,
    chunks: Chunks,
    user: CurrentUser,
    request_id: RequestId,
    file: Annotated[
        UploadFile | None,
        File(description="An image (JPEG, PNG, WebP) or a video; or one chunk of it."),
    ] = None,
    prompt: Annotated[str | None, Form(description="Instruction for the model.")] = None,
    model_path: Annotated[
        str | None, Form(description="A configured model name; default: the service's default.")
    ] = None,
    interval: Annotated[
        int | None, Form(ge=1, description="Video: sample every interval-th frame (default 10).")
    ] = None,
    upload_id: Annotated[
        str | None, Form(description="Chunked upload: your id for it, [A-Za-z0-9_-]{1,64}.")
    ] = None,
    chunk_number: Annotated[int | None, Form(ge=0, description="0-based chunk index.")] = None,
    total_chunks: Annotated[int | None, Form(ge=1, description="Chunks in the upload.")] = None,
    filename: Annotated[
        str | None, Form(description="Chunked upload: the file's name (extension checked).")
    ] = None,
    chunk_sha256: Annotated[
        str | None, Form(description="Optional SHA-256 (hex) of this chunk.")
    ] = None,
    file_path: Annotated[
        str | None,
        Form(description="Admins: an absolute path under the server's allowed media roots."),
    ] = None,
    audio: Annotated[
        str | None,
        Form(
            description="Video: 'off' (default) or 'transcribe' (the speech joins the "
            "prompt and the response's transcript; needs settings.speech)."
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> AnalyzeResponse | UploadProgress | JSONResponse:
    """Describe media; costs ``analysis_cost`` credits (admins: free), refunded on failure.

    Send ``file``; or, for large files, chunks (``upload_id``, ``chunk_number``,
    ``total_chunks``, ``filename``, ``file``) in any order: each but the last returns
    the progress, the last returns the analysis. Admins may send ``file_path``.
    """
    form = AnalyzeForm(
        params=AnalyzeParams(prompt=prompt, model=model_path, interval=interval, audio=audio),
        file=file,
        # A chunk's own name means nothing; the upload's name is the filename field.
        filename=filename if upload_id is not None else (file.filename if file else None),
        file_path=file_path,
        upload_id=upload_id,
        chunk_number=chunk_number,
        total_chunks=total_chunks,
        chunk_sha256=chunk_sha256,
        idempotency_key=idempotency_key,
        request_id=request_id,
    )
    services = AnalysisServices(ctx.pipeline, ctx.settings.analysis, accounts, chunks, ctx.speech)
    outcome = await submit_analysis(services, user, form)
    if isinstance(outcome, UploadState):
        return UploadProgress.of(outcome)
    if outcome.replayed:
        return JSONResponse(
            outcome.body, status_code=outcome.status_code, headers={REPLAY_HEADER: "true"}
        )
    # Validated against the schema; ``sampling`` and ``transcript`` only where set.
    return JSONResponse(AnalyzeResponse.model_validate(outcome.body).model_dump(exclude_unset=True))


@router.get(
    "/uploads/{upload_id}",
    response_model=UploadStatus,
    responses=error_responses(
        {
            400: "Malformed upload_id",
            401: "No valid API token or login session",
            404: "No such upload (another user's uploads are invisible)",
            410: "The upload expired or was discarded",
        }
    ),
)
async def get_upload(upload_id: str, chunks: Chunks, user: CurrentUser) -> UploadStatus:
    """Received chunks of a chunked upload (resume by sending the missing ones)."""
    return UploadStatus.of(await upload_status(chunks, user, upload_id))
