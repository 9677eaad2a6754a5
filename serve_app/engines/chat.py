"""Chat messages and video metadata shared by the model backends.

Every backend renders the same conversation: an optional system turn, then one user
turn holding the images (in order) or the video, followed by the text prompt. Video
frames arrive already sampled and resized, so backends pass metadata that places each
frame in time and tell the processor not to sample again.
"""

from __future__ import annotations

from typing import Any

from serve_app.engines.base import ChatTurn, GenerationRequest, MediaSlot
from serve_app.errors import InvalidRequest, ParameterError
from serve_app.media.frames import FrameBatch

#: Frame rate assumed when a batch carries neither a source fps nor usable timestamps
#: (Qwen2.5-VL's default sampling rate).
FALLBACK_FPS = 2.0

Message = dict[str, Any]


def has_media(request: GenerationRequest) -> bool:
    return bool(request.images) or request.video is not None


def require_text_only(request: GenerationRequest, model_name: str) -> None:
    """Raise :class:`InvalidRequest` if a text-only model is sent images or video."""
    if has_media(request):
        raise InvalidRequest(f"model {model_name!r} is text-only and takes no images or video")


def require_unconstrained(request: GenerationRequest, model_name: str) -> None:
    """Raise :class:`ParameterError` (``param="response_format"``) if the request asks
    for a ``response_format`` that a model without constrained decoding cannot honour."""
    if request.sampling.response_format is not None:
        raise ParameterError(
            f"response_format is not supported by model {model_name!r} "
            "(its engine cannot constrain output)",
            "response_format",
        )


def build_messages(request: GenerationRequest) -> list[Message]:
    """Messages in the Hugging Face chat format for ``apply_chat_template``.

    Media appear as ``{"type": "image"}`` / ``{"type": "video"}`` placeholders, which
    Qwen2-VL-style templates render as ``<|vision_start|><|image_pad|><|vision_end|>``;
    the pixels go to the processor separately, in the same order. A text-only request
    gets a plain string turn, which text-only chat templates also accept.
    """
    if request.conversation:
        return [render_turn(turn) for turn in request.conversation]
    messages: list[Message] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    if not has_media(request):
        messages.append({"role": "user", "content": request.prompt})
        return messages
    content: list[dict[str, Any]] = [{"type": "image"} for _ in request.images]
    if request.video is not None:
        content.append({"type": "video"})
    content.append({"type": "text", "text": request.prompt})
    messages.append({"role": "user", "content": content})
    return messages


def render_turn(turn: ChatTurn) -> Message:
    """One conversation turn: a plain string when it holds only text, else parts."""
    if not any(isinstance(p, MediaSlot) for p in turn.parts):
        return {"role": turn.role, "content": turn.text}
    content: list[dict[str, Any]] = [
        {"type": p.value} if isinstance(p, MediaSlot) else {"type": "text", "text": p}
        for p in turn.parts
    ]
    return {"role": turn.role, "content": content}


def video_metadata(batch: FrameBatch) -> dict[str, Any]:
    """Metadata for pre-sampled frames, with the keys of transformers' ``VideoMetadata``.

    ``fps`` is the source frame rate and ``frames_indices`` the source index of each
    frame, so ``len(frames_indices) / total_num_frames * fps`` is the sampling rate
    Qwen2.5-VL uses for temporal positions. Without a source fps the frames are
    described as a clip of their own at the rate their timestamps imply.
    """
    n = batch.num_frames
    if batch.source_fps > 0:
        fps = float(batch.source_fps)
        indices = [int(i) for i in batch.frame_indices]
        total = max(int(batch.total_frames), max(indices) + 1)
        duration = float(batch.duration_s) if batch.duration_s > 0 else total / fps
    else:
        span = batch.timestamps[-1] - batch.timestamps[0] if n > 1 else 0.0
        fps = (n - 1) / span if span > 0 else FALLBACK_FPS
        indices = list(range(n))
        total = n
        duration = n / fps
    return {
        "fps": fps,
        "total_num_frames": total,
        "frames_indices": indices,
        "duration": duration,
        "width": batch.width,
        "height": batch.height,
        "video_backend": "serve_app",
    }


def sampled_fps(metadata: dict[str, Any]) -> float:
    """Frames per second actually sampled (what the model's time axis is scaled by)."""
    return float(len(metadata["frames_indices"]) / metadata["total_num_frames"] * metadata["fps"])
