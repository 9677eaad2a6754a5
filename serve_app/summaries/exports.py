"""A summary job's results as downloads: JSON, SRT and WebVTT.

Captions track (SRT and VTT): one cue per chunk with a caption, from the chunk's
``start_s`` to ``min(end_s, start of the next cue)``, so cues never overlap even when the
job's chunks do. Variants: ``source`` (the captions), ``bilingual`` (each caption, then
its translation on the following lines) and ``translation`` (the translation alone); the
last two need a job submitted with a ``language`` and every chunk translated, else
:class:`~serve_app.errors.InvalidRequest`.

Chapters track (VTT only, ``track="chapters"``, for ``<track kind="chapters">``): one
cue per chapter whose text is the chapter's title on one line, as players show chapter
titles in a menu; the description stays in the JSON document (``bilingual``: "title /
translated title"). SRT has no chapters track.

Speech track (SRT and VTT, ``track="speech"``, jobs that transcribed their audio): one
cue per transcript segment, in time order, as said (no translation variants); cues
never overlap.

Cue text is made safe for the formats: control characters dropped, line breaks
normalised, blank lines removed (a blank line ends a cue), ``-->`` never appears (VTT
escapes ``&``, ``<`` and ``>`` as character references, which parsers turn back into the
text; SRT has no escapes, so its ``-->`` is written ``->``). Hours widen past 99
(``100:00:00,000``) for videos of any length.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from serve_app.errors import InvalidRequest
from serve_app.summaries.results import Chapter, ChunkResult, SummaryResult

ExportFormat = Literal["json", "srt", "vtt"]
Variant = Literal["source", "bilingual", "translation"]
Track = Literal["captions", "chapters", "speech"]
_T = TypeVar("_T", bound=str)

FORMATS: tuple[ExportFormat, ...] = ("json", "srt", "vtt")
VARIANTS: tuple[Variant, ...] = ("source", "bilingual", "translation")
TRACKS: tuple[Track, ...] = ("captions", "chapters", "speech")

_CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt; charset=utf-8",
}
# Line breaks of every kind a model (or a JSON string) may carry, as "\n".
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_SPACES = re.compile(r"[ \t]{2,}")
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Export:
    """A rendered download: the body, its media type and a file name."""

    body: bytes
    media_type: str
    filename: str

    def content_disposition(self) -> str:
        """The ``Content-Disposition`` header value (the name is ASCII-safe)."""
        return f'attachment; filename="{self.filename}"'


@dataclass(frozen=True)
class _Cue:
    start_ms: int
    end_ms: int
    lines: list[str]
    ident: str


def content_type(fmt: str) -> str:
    """The media type of an export format (``json``, ``srt`` or ``vtt``)."""
    return _CONTENT_TYPES[_check(fmt, FORMATS, "format")]


def export_filename(
    job_id: str,
    fmt: str,
    variant: str = "source",
    track: str = "captions",
    language: str | None = None,
) -> str:
    """``summary-<job id>[.chapters][.<language>|.bilingual].<fmt>``.

    The translation variant carries the language tag before the extension
    (``summary-<id>.th.srt``), the suffix players read a subtitle's language from.
    """
    fmt = _check(fmt, FORMATS, "format")
    parts = ["summary-" + _UNSAFE_ID.sub("_", job_id)]
    if track in ("chapters", "speech"):
        parts.append(track)
    if variant == "bilingual":
        parts.append("bilingual")
    elif variant == "translation":
        parts.append(_UNSAFE_ID.sub("_", language) if language else "translation")
    parts.append(fmt)
    return ".".join(parts)


def render(
    result: SummaryResult, fmt: str, variant: str = "source", track: str = "captions"
) -> Export:
    """One export of ``result`` as the HTTP route sends it (``InvalidRequest`` on bad
    parameters: an unknown format, variant or track; SRT chapters; a variant or track
    with JSON, whose document already holds them all)."""
    fmt = _check(fmt, FORMATS, "format")
    if fmt == "json":
        if variant != "source" or track != "captions":
            raise InvalidRequest(
                "export.json holds every track and translation; variant and track apply "
                "to export.srt and export.vtt"
            )
        body = to_json(result)
    elif fmt == "srt":
        if track == "chapters":
            raise InvalidRequest("SRT has no chapters track; use export.vtt?track=chapters")
        body = to_srt(result, variant, track).encode("utf-8")
    else:
        body = to_vtt(result, variant, track).encode("utf-8")
    filename = export_filename(result["job_id"], fmt, variant, track, result["language"])
    return Export(body=body, media_type=content_type(fmt), filename=filename)


def to_json(result: SummaryResult) -> bytes:
    """The results document as UTF-8 JSON (non-ASCII text kept readable)."""
    text = json.dumps(result, ensure_ascii=False, indent=2, allow_nan=False)
    # A lone surrogate (from a "\ud800" escape in model output) cannot be UTF-8.
    return (text + "\n").encode("utf-8", errors="replace")


def to_srt(result: SummaryResult, variant: str = "source", track: str = "captions") -> str:
    """The captions (or speech) track as SubRip (``HH:MM:SS,mmm``, cues numbered from 1)."""
    variant = _check(variant, VARIANTS, "variant")
    if _check(track, TRACKS, "track") == "chapters":
        raise InvalidRequest("SRT has no chapters track; use export.vtt?track=chapters")
    cues = _speech_cues(result, variant) if track == "speech" else _caption_cues(result, variant)
    blocks = []
    for number, cue in enumerate(cues, start=1):
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        timing = f"{_timecode(cue.start_ms, ',')} --> {_timecode(cue.end_ms, ',')}"
        blocks.append(f"{number}\n{timing}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(result: SummaryResult, variant: str = "source", track: str = "captions") -> str:
    """The captions or chapters track as WebVTT (``HH:MM:SS.mmm``)."""
    variant = _check(variant, VARIANTS, "variant")
    track = _check(track, TRACKS, "track")
    if track == "chapters":
        cues = _chapter_cues(result, variant)
    elif track == "speech":
        cues = _speech_cues(result, variant)
    else:
        cues = _caption_cues(result, variant)
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = "\n".join(_vtt_escape(line) for line in cue.lines)
        timing = f"{_timecode(cue.start_ms, '.')} --> {_timecode(cue.end_ms, '.')}"
        blocks.append(f"{cue.ident}\n{timing}\n{text}\n")
    return "\n".join(blocks)


def clean_lines(text: str) -> list[str]:
    """``text`` as cue lines: control characters dropped (a tab is a space), runs of
    spaces made one, each line stripped, no blank line (a blank line would end the cue),
    no unpaired surrogate."""
    lines = []
    for raw in _LINE_BREAKS.split(text):
        kept = "".join(
            " " if ch == "\t" else ch
            for ch in raw
            if ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cs")
        )
        if kept := _SPACES.sub(" ", kept).strip():
            lines.append(kept)
    return lines


def _check(value: str, allowed: tuple[_T, ...], name: str) -> _T:
    for option in allowed:
        if value == option:
            return option
    raise InvalidRequest(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


def _need_language(result: SummaryResult, variant: str) -> None:
    if variant != "source" and not result["language"]:
        raise InvalidRequest(
            f"variant={variant} needs a job submitted with a language; this one has none"
        )


def _caption_lines(chunk: ChunkResult, variant: str) -> list[str]:
    caption = clean_lines(chunk["caption"])
    if variant == "source" or not caption:
        return caption
    if "translation" not in chunk:
        raise InvalidRequest(f"variant={variant}: chunk {chunk['index']} has no translation (yet)")
    translation = clean_lines(chunk["translation"])
    return caption + translation if variant == "bilingual" else translation


def _caption_cues(result: SummaryResult, variant: str) -> list[_Cue]:
    _need_language(result, variant)
    chunks = sorted(result["chunks"], key=lambda c: (c["start_s"], c["index"]))
    spans = [
        (_ms(c["start_s"]), _ms(c["end_s"]), lines, f"chunk-{c['index']}")
        for c in chunks
        if (lines := _caption_lines(c, variant))
    ]
    return list(_without_overlap(spans))


def _speech_cues(result: SummaryResult, variant: str) -> list[_Cue]:
    if variant != "source":
        raise InvalidRequest("the speech track is as said: it has no translation variants")
    segments = sorted(
        {
            (_ms(s["start_s"]), _ms(s["end_s"]), s["text"])
            for c in result["chunks"]
            for s in c.get("transcript", [])
        }
    )
    spans = [
        (start, end, lines, f"speech-{n}")
        for n, (start, end, text) in enumerate(segments, start=1)
        if (lines := clean_lines(text))
    ]
    return list(_without_overlap(spans))


def _chapter_title(chapter: Chapter, number: int, variant: str) -> list[str]:
    title = " ".join(clean_lines(chapter["title"])) or f"Chapter {number}"
    if variant == "source":
        return [title]
    if "title_translation" not in chapter:
        raise InvalidRequest(f"variant={variant}: chapter {number} has no translated title")
    translated = " ".join(clean_lines(chapter["title_translation"]))
    if variant == "translation" or not translated:
        return [translated or title]
    return [f"{title} / {translated}"]


def _chapter_cues(result: SummaryResult, variant: str) -> list[_Cue]:
    _need_language(result, variant)
    chapters = sorted(result["chapters"], key=lambda c: c["start_s"])
    spans = [
        (_ms(c["start_s"]), _ms(c["end_s"]), _chapter_title(c, n, variant), f"chapter-{n}")
        for n, c in enumerate(chapters, start=1)
    ]
    return list(_without_overlap(spans))


def _without_overlap(spans: list[tuple[int, int, list[str], str]]) -> Iterable[_Cue]:
    """Each span ends by the next one's start; a span left empty is dropped."""
    for i, (start, end, lines, ident) in enumerate(spans):
        if i + 1 < len(spans):
            end = min(end, spans[i + 1][0])
        if end > start:
            yield _Cue(start_ms=start, end_ms=end, lines=lines, ident=ident)


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ms(t: float) -> int:
    return max(0, round(t * 1000))


def _timecode(ms: int, decimal: str) -> str:
    """``HH:MM:SS<decimal>mmm``; the hours field widens past 99."""
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal}{millis:03d}"
