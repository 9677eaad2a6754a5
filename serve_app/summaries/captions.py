"""A chunk's caption request (its frames, their true times) and its stored result."""

from __future__ import annotations

import numpy as np

from serve_app.engines.base import GenerationRequest, GenerationResult, SamplingParams
from serve_app.media.frames import FrameBatch, MediaKind
from serve_app.summaries.plan import ChunkPlan
from serve_app.summaries.results import ChunkResult


def timecode(seconds: float) -> str:
    """``H:MM:SS.s`` (hours only when needed), as the prompts show times."""
    tenths = round(seconds * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    text = f"{minutes:02d}:{rest / 10:04.1f}"
    return f"{hours}:{text}" if hours else text


def caption_prompt(chunk: ChunkPlan, instruction: str, speech: str = "") -> str:
    """The instruction, after where the frames come from (so the model can place them)
    and, when the chunk's audio was transcribed, what is said in it."""
    times = ", ".join(timecode(t) for t in chunk.timestamps)
    heard = f"Speech in this part (seconds of the video):\n{speech}\n" if speech else ""
    return (
        f"The video shows {len(chunk.timestamps)} frames from "
        f"{timecode(chunk.start_s)} to {timecode(chunk.end_s)} of a longer video, "
        f"taken at {times}.\n{heard}{instruction}"
    )


def caption_request(
    chunk: ChunkPlan,
    frames: np.ndarray,
    instruction: str,
    max_tokens: int,
    source_fps: float,
    speech: str = "",
) -> GenerationRequest:
    """One video request with ``chunk``'s frames (already at the model's video size).

    Qwen2.5-VL merges frames in pairs; an odd count repeats its last frame (the
    model's processors would pad the same way), so the request is explicit about it.
    """
    indices, times = chunk.frame_indices, chunk.timestamps
    if len(indices) % 2:
        frames = np.concatenate([frames, frames[-1:]])
        indices, times = (*indices, indices[-1]), (*times, times[-1])
    batch = FrameBatch(
        kind=MediaKind.VIDEO,
        frames=np.ascontiguousarray(frames),
        frame_indices=tuple(indices),
        timestamps=tuple(times),
        source_fps=source_fps,
        total_frames=len(indices),
        duration_s=chunk.end_s - chunk.start_s,
    )
    return GenerationRequest(
        prompt=caption_prompt(chunk, instruction, speech),
        video=batch,
        sampling=SamplingParams(max_tokens=max_tokens),
        request_id=f"chunk-{chunk.index}",
    )


def chunk_result(chunk: ChunkPlan, result: GenerationResult) -> ChunkResult:
    """What is stored (and streamed) for ``chunk`` once captioned."""
    return {
        "index": chunk.index,
        "start_s": round(chunk.start_s, 3),
        "end_s": round(chunk.end_s, 3),
        "frame_indices": list(chunk.frame_indices),
        "timestamps": [round(t, 6) for t in chunk.timestamps],
        "effective_fps": round(chunk.effective_fps, 4),
        "caption": result.text.strip(),
        "tokens": {"input": result.input_tokens, "output": result.output_tokens},
    }
