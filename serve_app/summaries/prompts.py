"""Every prompt of the summaries' reduce step, in one place.

The reduce step makes three kinds of calls on the text (story) model:

1. **Chapters** (one call per group of chunk captions): :data:`CHAPTERS_SYSTEM` plus
   :func:`chapters_prompt`, the captions each prefixed by its time range
   (``[00:01:30-00:02:00] caption``, with an en dash), then the summary instruction.
   The answer is one JSON object, constrained by :data:`CHAPTERS_RESPONSE_FORMAT`
   where the engine can.
2. **Merge** (when the captions needed several groups): :data:`MERGE_SYSTEM` plus
   :func:`merge_prompt`, the groups' partial summaries with their time ranges; the
   answer is plain text, the summary of the whole span.
3. **Translate** (one call per text): :func:`translation_system` names the language;
   the user turn is the English text alone.

Times are shown as ``HH:MM:SS`` since the start of the video; the model is asked to
write chapter starts the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from serve_app.story.languages import Language

#: The summary instruction used when a request brings no ``summary_prompt``.
DEFAULT_SUMMARY_STYLE = (
    "Summarise what happens in the video in one paragraph of about 80 to 150 words, "
    "in the order it happens. Describe only what the captions report."
)

CHAPTERS_SYSTEM = (
    "You are a video editor. You receive captions of consecutive parts of a video, each "
    "after its time range since the start of the video. Divide the video into chapters "
    "and summarise it. Reply with one JSON object only, no markdown: "
    '{"chapters": [{"start": "HH:MM:SS", "title": "...", "description": "..."}], '
    '"summary": "..."}. A chapter starts where one of the captioned parts starts; '
    "chapters are in time order; a title has a few words, a description one or two "
    "sentences."
)

MERGE_SYSTEM = (
    "You write the summary of a whole video from summaries of its consecutive parts, "
    "each after its time range. Reply with the summary text only: no title, no time "
    "ranges, no notes, no markdown."
)

#: JSON schema of the chapters answer (OpenAI ``response_format``, as JSON).
CHAPTERS_RESPONSE_FORMAT = json.dumps(
    {
        "type": "json_schema",
        "json_schema": {
            "name": "video_chapters",
            "schema": {
                "type": "object",
                "properties": {
                    "chapters": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "start": {"type": "string"},
                                "title": {"type": "string"},
                                "description": {"type": "string"},
                            },
                            "required": ["start", "title", "description"],
                        },
                    },
                    "summary": {"type": "string"},
                },
                "required": ["chapters", "summary"],
            },
        },
    }
)


def format_timecode(seconds: float) -> str:
    """``HH:MM:SS`` (whole seconds, rounded) of a time since the start of the video."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def time_range(start_s: float, end_s: float) -> str:
    """``[HH:MM:SS-HH:MM:SS]`` (en dash), the prefix of a caption or partial summary."""
    return f"[{format_timecode(start_s)}\u2013{format_timecode(end_s)}]"


def timed_line(start_s: float, end_s: float, text: str) -> str:
    """One caption (or partial summary) as the model reads it."""
    return f"{time_range(start_s, end_s)} {text}"


def chapters_prompt(lines: Sequence[str], style: str, *, max_chapters: int) -> str:
    """The chapters call's user turn: the timed captions, then the instructions.

    Args:
        lines: :func:`timed_line` per caption, in time order.
        style: the caller's ``summary_prompt``, or :data:`DEFAULT_SUMMARY_STYLE`.
        max_chapters: the most chapters the answer should have.
    """
    captions = "\n".join(lines)
    return (
        f"Captions of the video, in time order:\n{captions}\n\n"
        f"Write between 1 and {max_chapters} chapters; each starts at the start time of "
        f"one of the captions above, written as HH:MM:SS.\n"
        f"Summary instructions: {style}\n\nReply with the JSON object only."
    )


def merge_prompt(lines: Sequence[str], style: str) -> str:
    """The merge call's user turn: the timed partial summaries, then the instructions."""
    parts = "\n".join(lines)
    return (
        f"Summaries of consecutive parts of the video, in time order:\n{parts}\n\n"
        f"Instructions: {style}\n\nWrite the summary of the whole video."
    )


def translation_system(language: Language) -> str:
    """The translation call's system turn; its user turn is the English text alone."""
    return (
        f"You are a professional translator. Translate the user's English text (a title, "
        f"description or summary of a video) into {language.name} (language tag "
        f"{language.code}). Keep the meaning and names. Reply with the translation only: "
        f"no notes, no transliteration, no English."
    )
