"""Model-written times placed on the clip's timeline: parsed, clamped, snapped to a frame.

The reduce step asks the text model for chapters; the model writes their start and end
as text ("1:15", "75.5s", "00:01:15,500"). Every such time goes through
:func:`place_model_time`: parsed (:func:`parse_timecode`), clamped to the clip
(:func:`clamp_to_clip`), then snapped to the nearest frame the job sampled
(:func:`snap_to_frame`), so a chapter never starts at a moment no model saw nor outside
the clip (chapters cover the clip exactly, so the caller keeps the first chapter's start
and the last one's end on the clip's edges). The captions the model reads carry the
frames' true timestamps (seconds since the start of the video, not of the clip), so model
times are read on that same scale.

Times are compared in whole milliseconds (the results' precision) so that ties are ties
and not float noise.
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections.abc import Sequence

from serve_app.summaries.results import Clip

# "75", "75.5", "75.5s", "75 sec", "75 seconds".
_SECONDS = re.compile(r"(\d+(?:[.,]\d+)?)\s*(?:s|secs?|seconds?)?", re.ASCII | re.IGNORECASE)
# "1:15", "01:15", "1:02:03", "01:02:03.250", "00:01:15,500": the first field is
# unbounded (minutes past 59 in "75:00", hours past 23), the others are below 60.
_CLOCK = re.compile(r"(\d+):(\d{1,2})(?::(\d{1,2}))?(?:[.,](\d+))?", re.ASCII)
# "1h2m3s", "2m 30s", "1 min 15 s", "1h".
_UNITS = re.compile(
    r"(?=\d)(?:(\d+)\s*h(?:ours?|rs?)?\s*)?(?:(\d+)\s*m(?:in(?:utes?|s)?)?\s*)?"
    r"(?:(\d+(?:[.,]\d+)?)\s*s(?:ec(?:ond)?s?)?)?",
    re.ASCII | re.IGNORECASE,
)
_BRACKETS = ("()", "[]", "<>", "{}")


def _ms(t: float) -> int:
    return round(t * 1000)


def clamp_to_clip(t: float, clip_start: float, clip_end: float) -> float:
    """``t`` limited to ``[clip_start, clip_end]``; ``ValueError`` if the clip is empty."""
    if clip_end < clip_start:
        raise ValueError(f"clip ends ({clip_end}) before it starts ({clip_start})")
    return min(max(t, clip_start), clip_end)


def snap_to_frame(t: float, timestamps: Sequence[float]) -> float:
    """The sampled frame time nearest to ``t``; on a tie, the earlier frame.

    ``timestamps`` are the presentation times of the frames the job sampled, ascending
    (as in :class:`~serve_app.summaries.results.ChunkResult`). ``ValueError`` if empty.
    """
    if not timestamps:
        raise ValueError("no sampled frames to snap to")
    keys = [_ms(x) for x in timestamps]
    target = _ms(t)
    i = bisect.bisect_left(keys, target)
    if i == 0:
        return timestamps[0]
    if i == len(keys):
        return timestamps[-1]
    before, after = i - 1, i
    # Ties go to the earlier frame: `after` only wins when strictly closer.
    if keys[after] - target < target - keys[before]:
        return timestamps[after]
    return timestamps[before]


def parse_timecode(text: str) -> float | None:
    """Seconds written the ways models write them, or ``None`` if unreadable.

    Accepted: ``75``, ``75.5``, ``75.5s``, ``75 seconds``, ``1:15``, ``01:15``,
    ``75:00`` (minutes past 59), ``1:02:03``, ``01:02:03.250``, ``00:01:15,500`` (SRT's
    comma), ``1h2m3s``, ``2m 30s``; full-width digits and colons are read as ASCII;
    surrounding spaces and one pair of brackets are ignored. Negative times, seconds or
    minutes fields past 59 after the first field, and anything else give ``None``.
    The result is rounded to milliseconds.
    """
    s = unicodedata.normalize("NFKC", text).strip()
    if len(s) >= 2 and s[0] + s[-1] in _BRACKETS:
        s = s[1:-1].strip()
    if not s:
        return None
    if m := _CLOCK.fullmatch(s):
        first, second, third, fraction = m.groups()
        if third is None:  # m:ss
            hours, minutes, seconds = 0, int(first), int(second)
        else:  # h:mm:ss
            hours, minutes, seconds = int(first), int(second), int(third)
            if minutes >= 60:
                return None
        if seconds >= 60:
            return None
        frac = float("0." + fraction) if fraction else 0.0
        return round(hours * 3600 + minutes * 60 + seconds + frac, 3)
    if m := _SECONDS.fullmatch(s):
        return round(float(m.group(1).replace(",", ".")), 3)
    if (m := _UNITS.fullmatch(s)) and any(m.groups()):
        hours_s, minutes_s, seconds_s = m.groups()
        total = int(hours_s or 0) * 3600 + int(minutes_s or 0) * 60
        return round(total + float((seconds_s or "0").replace(",", ".")), 3)
    return None


def place_model_time(value: str | float, clip: Clip, timestamps: Sequence[float]) -> float | None:
    """A time the model wrote, on the clip's timeline at a frame the job sampled.

    ``value`` is the model's text (see :func:`parse_timecode`) or a number it wrote in
    JSON; it is read as seconds since the start of the video, clamped to ``clip`` and
    snapped to the nearest of ``timestamps`` (the job's sampled frame times, ascending;
    with none, the clamped time is returned). ``None`` when the value is unreadable,
    negative or not finite: the caller decides what to do with a chapter without a time.
    """
    if isinstance(value, bool):
        return None
    t = parse_timecode(value) if isinstance(value, str) else float(value)
    if t is None or not math.isfinite(t) or t < 0:
        return None
    placed = clamp_to_clip(t, clip["start_s"], clip["end_s"])
    if timestamps:
        placed = snap_to_frame(placed, timestamps)
    return round(placed, 3)
