"""``POST /api/analyze``: describe one image or video."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from serve_app.api.deps import Context, RequestId
from serve_app.api.schemas import AnalyzeResponse, ErrorResponse
from serve_app.pipeline.analysis import AnalyzeParams, analyze
from serve_app.storage.spool import spooled

router = APIRouter(prefix="/api", tags=["analysis"])

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Bad parameters, unknown model or unsupported media type",
        413: "File or request too large, or media beyond the probe caps",
        422: "Corrupt, truncated, empty or undecodable media",
        502: "The model produced no usable answer",
        503: "A model backend is unavailable or overloaded (see Retry-After)",
    }.items()
}


@router.post("/analyze", response_model=AnalyzeResponse, responses=_ERRORS)
async def analyze_media(
    ctx: Context,
    request_id: RequestId,
    file: Annotated[UploadFile, File(description="An image (JPEG, PNG, WebP) or a video.")],
    prompt: Annotated[str | None, Form(description="Instruction for the model.")] = None,
    model_path: Annotated[
        str | None, Form(description="A configured model name; default: the service's default.")
    ] = None,
    interval: Annotated[
        int | None, Form(ge=1, description="Video: sample every interval-th frame (default 10).")
    ] = None,
) -> AnalyzeResponse:
    settings = ctx.settings
    async with spooled(
        file, settings.spool_dir, file.filename or "", settings.max_request_bytes
    ) as upload:
        outcome = await analyze(
            ctx.pipeline,
            upload,
            AnalyzeParams(prompt=prompt, model=model_path, interval=interval),
            settings,
            request_id=request_id,
        )
    return AnalyzeResponse(result=outcome.text, tokens_used=0, remaining_tokens=None)
