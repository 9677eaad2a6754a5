"""``POST /api/analyze``: describe one image or video."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse

from serve_app.accounts.charging import charge
from serve_app.accounts.idempotency import file_sha256, fingerprint
from serve_app.api.auth import Accounts, CurrentUser, IdempotencyKey, replay_response
from serve_app.api.deps import Context, RequestId
from serve_app.api.schemas import AnalyzeResponse, ErrorResponse
from serve_app.pipeline.analysis import AnalyzeParams, analyze
from serve_app.storage.spool import spooled

router = APIRouter(prefix="/api", tags=["analysis"])

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Bad parameters, unknown model or unsupported media type",
        401: "No valid API token or login session",
        402: "Not enough credits (nothing was run)",
        403: "Login-session request without X-CSRF-Token",
        409: "A request with the same Idempotency-Key is still running",
        413: "File or request too large, or media beyond the probe caps",
        422: "Corrupt, truncated, empty or undecodable media; or Idempotency-Key reused",
        429: "Rate limited (see Retry-After)",
        502: "The model produced no usable answer",
        503: "A model backend is unavailable or overloaded (see Retry-After)",
    }.items()
}


@router.post("/analyze", response_model=AnalyzeResponse, responses=_ERRORS)
async def analyze_media(
    ctx: Context,
    accounts: Accounts,
    user: CurrentUser,
    request_id: RequestId,
    file: Annotated[UploadFile, File(description="An image (JPEG, PNG, WebP) or a video.")],
    prompt: Annotated[str | None, Form(description="Instruction for the model.")] = None,
    model_path: Annotated[
        str | None, Form(description="A configured model name; default: the service's default.")
    ] = None,
    interval: Annotated[
        int | None, Form(ge=1, description="Video: sample every interval-th frame (default 10).")
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> AnalyzeResponse | JSONResponse:
    """Costs ``analysis_cost`` credits (admins: free); refunded when the analysis fails."""
    settings = ctx.settings
    async with spooled(
        file, settings.spool_dir, file.filename or "", settings.max_request_bytes
    ) as upload:
        digest = await asyncio.to_thread(file_sha256, upload.path)
        request_fp = fingerprint("POST /api/analyze", digest, prompt, model_path, str(interval))
        async with charge(
            accounts, user, idempotency_key=idempotency_key, fingerprint=request_fp
        ) as bill:
            if bill.replay is not None:
                return replay_response(bill.replay)
            with accounts.in_flight.track():
                outcome = await analyze(
                    ctx.pipeline,
                    upload,
                    AnalyzeParams(prompt=prompt, model=model_path, interval=interval),
                    settings,
                    request_id=request_id,
                )
            response = AnalyzeResponse(
                result=outcome.text, tokens_used=bill.cost, remaining_tokens=bill.remaining
            )
            bill.record(response.model_dump())
    return response
