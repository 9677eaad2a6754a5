"""Chapters from a model's answer, or from the captions when the answer is unusable.

Reading an answer (:func:`parse_answer`) is lenient: the outermost ``{...}`` is parsed
as JSON (code fences and chatter around it are ignored); when that fails (an answer cut
off at ``max_tokens``), every complete ``{...}`` object that has a ``start`` is kept
as a chapter and a ``"summary": "..."`` string is picked out.

Placing chapters (:func:`place_chapters`) within a :class:`Span` (a stretch of the clip
and the start times of the chunks in it): each start is read by :func:`read_time`
(:func:`~serve_app.summaries.timeline.parse_timecode`, or the first clock time in a
longer text such as a range), then clamped to the span and snapped to the nearest chunk
start by :func:`~serve_app.summaries.timeline.place_model_time` (ties go to the earlier
one), so chapters begin where a chunk begins; repeats of a start keep the first chapter the
model wrote; chapters are sorted, the first begins at the span's start, each ends where
the next begins and the last at the span's end. Missing titles or descriptions are
filled from the captions.

The fallback (:func:`fallback_chapters`) is deterministic: one chapter per
``per_chapter`` consecutive chunks; its title is the first sentence of its first
non-empty caption (at most :data:`TITLE_CHARS` characters), or its time range when every
caption is empty; its description is its captions joined (at most
:data:`DESCRIPTION_CHARS`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serve_app.summaries.prompts import time_range
from serve_app.summaries.results import Chapter, Clip
from serve_app.summaries.timeline import parse_timecode, place_model_time

TITLE_CHARS = 80
DESCRIPTION_CHARS = 500

_CLOCK_IN_TEXT = re.compile(r"\d+(?::\d{1,2}){1,2}(?:[.,]\d+)?")
_SUMMARY = re.compile(r'"summary"\s*:\s*("(?:[^"\\]|\\.)*")')
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s")
_START_KEYS = ("start", "start_s", "start_time", "time", "timestamp")


@dataclass(frozen=True)
class TimedText:
    """A caption (or a partial summary) and the stretch of video it is about."""

    start_s: float
    end_s: float
    text: str
    #: Times of the frames the model saw for it (chapter times snap to these).
    frames: tuple[float, ...] = ()


@dataclass(frozen=True)
class Span:
    """A stretch ``[start_s, end_s]`` of the clip and the chunk starts inside it.

    ``starts`` are ascending, the first equal to ``start_s``; ``captions`` are the
    chunks' captions in the same order (``captions[i]`` begins at ``starts[i]``).
    """

    start_s: float
    end_s: float
    starts: tuple[float, ...]
    captions: tuple[str, ...]
    #: Sampled frame times inside the span, ascending; empty: snap to ``starts``.
    frames: tuple[float, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What could be read from one answer: raw chapter items and the summary.

    ``structured`` says whether any JSON was found (then the raw text is no summary).
    """

    chapters: list[dict[str, Any]]
    summary: str | None
    structured: bool


def parse_answer(text: str) -> Answer:
    """The chapters and summary in a model's answer, read leniently (module docstring)."""
    first, last = text.find("{"), text.rfind("}")
    if first < 0:
        return Answer([], None, False)
    if last > first:
        try:
            whole = json.loads(text[first : last + 1])
        except ValueError:
            whole = None
        if isinstance(whole, dict):
            return _from_object(whole)
    return _salvage(text, first)


def _from_object(whole: dict[str, Any]) -> Answer:
    items = whole.get("chapters")
    summary = whole.get("summary")
    return Answer(
        [i for i in items if isinstance(i, dict)] if isinstance(items, list) else [],
        summary.strip() if isinstance(summary, str) else None,
        True,
    )


def _salvage(text: str, first: int) -> Answer:
    """Complete chapter objects and a summary string from a broken or cut-off answer."""
    decoder = json.JSONDecoder()
    items: list[dict[str, Any]] = []
    i = first
    while i >= 0:
        try:
            value, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(value, dict) and "chapters" in value:
            return _from_object(value)  # a whole answer followed by more text
        if isinstance(value, dict) and any(k in value for k in _START_KEYS):
            items.append(value)
        i = text.find("{", end)
    summary: str | None = None
    match = _SUMMARY.search(text)
    if match is not None:
        try:
            summary = str(json.loads(match.group(1))).strip()
        except ValueError:
            summary = None
    return Answer(items, summary, bool(items) or summary is not None)


def read_time(value: object) -> float | None:
    """Seconds of a chapter start the model wrote, or None if unreadable.

    A number is taken as seconds; a string as
    :func:`~serve_app.summaries.timeline.parse_timecode` reads it or, failing that, its
    first clock time (a range ``"00:01:30-00:02:00"`` is 90.0, ``"at 2:00"`` 120.0).
    Negative or non-finite values are None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds: float | None = float(value)
    elif isinstance(value, str):
        seconds = parse_timecode(value)
        if seconds is None and (clock := _CLOCK_IN_TEXT.search(value)) is not None:
            seconds = parse_timecode(clock.group())
    else:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def snap(seconds: float, span: Span) -> float:
    """``seconds`` clamped to ``span`` and moved to the nearest sampled frame in it (the
    nearest chunk start when the span has no frame times)."""
    clip = Clip(start_s=span.start_s, end_s=span.end_s)
    placed = place_model_time(seconds, clip, span.frames or span.starts)
    return span.start_s if placed is None else placed  # None only for NaN or negatives


def place_chapters(items: Sequence[dict[str, Any]], span: Span) -> list[Chapter] | None:
    """The model's chapter items placed in ``span`` (module docstring); None if none is
    usable (no item has a readable start)."""
    placed: dict[float, tuple[str, str]] = {}
    for item in items:
        raw = next((item[k] for k in _START_KEYS if k in item), None)
        seconds = read_time(raw)
        if seconds is None:
            continue
        start = snap(seconds, span)
        if start not in placed:
            placed[start] = (_text(item.get("title")), _text(item.get("description")))
    if not placed:
        return None
    starts = sorted(placed)
    texts = [placed[s] for s in starts]
    starts[0] = span.start_s
    chapters = _contiguous(starts, span)
    for chapter, (title, description), start in zip(chapters, texts, starts, strict=True):
        captions = _captions_in(span, start, chapter["end_s"])
        chapter["title"] = truncate(title, TITLE_CHARS) or _fallback_title(captions, chapter)
        chapter["description"] = truncate(description, DESCRIPTION_CHARS) or truncate(
            " ".join(captions), DESCRIPTION_CHARS
        )
    return chapters


def fallback_chapters(span: Span, per_chapter: int) -> list[Chapter]:
    """One chapter per ``per_chapter`` consecutive chunks of ``span`` (module docstring)."""
    step = max(1, per_chapter)
    chapters = _contiguous([span.starts[i] for i in range(0, len(span.starts), step)], span)
    for n, chapter in enumerate(chapters):
        captions = [c for c in span.captions[n * step : (n + 1) * step] if c.strip()]
        chapter["title"] = _fallback_title(captions, chapter)
        chapter["description"] = truncate(" ".join(captions), DESCRIPTION_CHARS)
    return chapters


def truncate(text: str, limit: int) -> str:
    """``text`` with white space collapsed, cut at a word boundary to ``limit`` chars
    (``…`` included)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "\u2026"


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (all of it when it has no sentence end)."""
    text = " ".join(text.split())
    return _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


def _fallback_title(captions: Sequence[str], chapter: Chapter) -> str:
    for caption in captions:
        if caption.strip():
            return truncate(first_sentence(caption), TITLE_CHARS)
    return time_range(chapter["start_s"], chapter["end_s"])[1:-1]


def _captions_in(span: Span, start_s: float, end_s: float) -> list[str]:
    return [
        c
        for s, c in zip(span.starts, span.captions, strict=True)
        if start_s <= s < end_s and c.strip()
    ]


def _contiguous(starts: Sequence[float], span: Span) -> list[Chapter]:
    """Chapters (texts empty) from ascending ``starts``: each ends where the next begins."""
    ends = [*starts[1:], span.end_s]
    return [
        Chapter(start_s=round(s, 3), end_s=round(e, 3), title="", description="")
        for s, e in zip(starts, ends, strict=True)
    ]


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
