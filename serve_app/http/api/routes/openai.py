"""OpenAI-compatible ``/v1``: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Thin over :class:`serve_app.chat.service.ChatCompletions`; errors in OpenAI's shape
(:mod:`serve_app.http.api.openai_errors`). API tokens are the Bearer keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from serve_app.chat.protocol import ChatCompletion, ChatCompletionRequest, ErrorResponse, ModelList
from serve_app.http.api.openai_errors import OpenAIRoute
from serve_app.http.auth import REPLAY_HEADER
from serve_app.http.deps import Chat, CurrentUser, IdempotencyKey, RequestId

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Invalid or unsupported parameter (error.param names it), bad media URL",
        401: "No valid API token (the Bearer key)",
        402: "Not enough credits (nothing was run)",
        404: "Unknown model (code model_not_found)",
        409: "Same Idempotency-Key still running",
        413: "An image or video over the size, pixel or duration caps",
        422: "Corrupt or undecodable media; Idempotency-Key reused for another request",
        429: "Rate limited (see Retry-After)",
        502: "The model produced no usable answer",
        503: "A model backend is unavailable or overloaded (see Retry-After)",
    }.items()
}


@router.get("/models", response_model=ModelList, responses=_ERRORS)
async def list_models(chat: Chat, user: CurrentUser) -> ModelList:
    """The served models, in OpenAI's list shape."""
    return chat.models()


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        **_ERRORS,
        200: {
            "description": "A completion; with stream: true, server-sent chunks ending "
            "with data: [DONE]",
            "content": {"text/event-stream": {}},
        },
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    chat: Chat,
    user: CurrentUser,
    request_id: RequestId,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse | StreamingResponse:
    """Chat Completions with images and video (data: or http(s) URLs, or frame lists).

    Costs ``chat.cost`` credits per choice (default: the analysis cost; admins free).
    """
    if body.stream:
        events = chat.stream(user, body, idempotency_key=idempotency_key, request_id=request_id)
        first = await anext(events)  # refusals still get an error status, not a stream
        return StreamingResponse(
            _prepend(first, events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    reply = await chat.complete(user, body, idempotency_key=idempotency_key, request_id=request_id)
    headers = {REPLAY_HEADER: "true"} if reply.replayed else None
    return JSONResponse(reply.body, headers=headers)


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for event in rest:
        yield event
