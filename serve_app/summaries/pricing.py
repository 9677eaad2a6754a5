"""What a summary costs and uses, before it runs: credits, tokens, time.

Credits: ``credits_per_chunk`` per chunk plus ``credits_per_summary`` for the reduce
step (0 for administrators). Tokens: each chunk's visual tokens at the size its frames
are resized to (the model's video pixel budget) plus the prompt, and at most
``caption_max_tokens`` out per chunk; the reduce step reads every caption.
"""

from __future__ import annotations

from dataclasses import dataclass

from serve_app.media.budget import PixelBudget
from serve_app.media.resize import estimate_visual_tokens, video_target_size
from serve_app.summaries.plan import SummaryPlan
from serve_app.summaries.settings import SummarySettings

#: Prompt tokens of a caption request besides the frames (instruction and times).
CAPTION_PROMPT_TOKENS = 120


@dataclass(frozen=True)
class Estimate:
    chunks: int
    frames: int
    visual_tokens: int
    output_tokens: int
    credits: int


def summary_cost(settings: SummarySettings, chunks: int, billable: bool = True) -> int:
    """Credits for a job of ``chunks`` chunks."""
    if not billable:
        return 0
    return chunks * settings.credits_per_chunk + settings.credits_per_summary


def frame_size(height: int, width: int, per_chunk: int, pixels: PixelBudget) -> tuple[int, int]:
    """``(height, width)`` each chunk frame is decoded at: the model's video size."""
    even = per_chunk + per_chunk % 2
    return video_target_size(height, width, even, pixels)


def estimate(
    settings: SummarySettings,
    plan: SummaryPlan,
    size: tuple[int, int],
    billable: bool = True,
) -> Estimate:
    """Credits and tokens of ``plan`` with frames of ``size``."""
    visual = sum(
        estimate_visual_tokens("video", len(c.frame_indices) + len(c.frame_indices) % 2, *size)
        for c in plan.chunks
    )
    n = len(plan.chunks)
    captions_out = n * settings.caption_max_tokens
    return Estimate(
        chunks=n,
        frames=plan.frames_used,
        visual_tokens=visual + n * CAPTION_PROMPT_TOKENS,
        output_tokens=captions_out + settings.summary_max_tokens,
        credits=summary_cost(settings, n, billable),
    )
