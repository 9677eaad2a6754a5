"""The reduce step of a summary job: chapters and a summary from the chunk captions.

Pure over a text :class:`~serve_app.engines.backend.ModelBackend` (the story model).

**Hierarchy.** Prompt sizes are estimated without a tokenizer as ``ceil(chars / 3.5)``
(:func:`estimate_tokens`; English prose runs about 4 characters a token on Qwen's
tokenizer, so the estimate errs high) plus :data:`TEMPLATE_TOKENS` for the chat
template. The captions get what is left of ``context_tokens`` after the fixed prompt
and ``max_tokens``; a caption longer than that alone is cut. When they do not fit in
one call they are split into consecutive groups that do; each group's call answers
chapters (within the group's own stretch of the clip: from its first chunk's start to
the next group's) and a partial summary; the groups' chapters are concatenated and
their partial summaries are merged by further calls, in groups again, until one
summary is left (each partial summary is cut to half the room, so every merge call
takes at least two and the rounds end).

**Robustness.** The chapters call asks for JSON and passes a JSON-schema
``response_format``; an engine that cannot constrain output refuses it
(:class:`InvalidRequest` naming ``response_format``): that call is retried without it
and so are all later calls of the reduction. Answers are read leniently and placed
by :mod:`serve_app.summaries.chapters`. When a group's answer has no usable chapter,
its chapters are the deterministic fallback (about one chapter per
``ceil(chunks / MAX_CHAPTERS)`` chunks, so at most ~:data:`MAX_CHAPTERS` in all);
when it has no JSON summary, the summary is the answer's text (cut at a sentence end
if it hit ``max_tokens``), or, when that is JSON or empty, the captions joined. A call
the backend refuses (:class:`InvalidRequest`, e.g. a prompt the estimate undercounted)
or answers with nothing (:class:`GenerationFailed`) falls back the same way and is
logged; :class:`BackendUnavailable` propagates. The result has at least one chapter,
chapters cover the clip exactly, and the summary is non-empty when any caption is.

**Translation.** With a language, the summary and every chapter title and description
are translated by :func:`translate_texts`, one call per text, at most
:data:`TRANSLATE_CONCURRENCY` at once. A translation that fails or comes back empty is
left out (its ``*_translation`` key is absent; ``summary_translation`` is None).

Token counts are the sums of what every call reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from serve_app.engines.backend import ModelBackend
from serve_app.engines.base import GenerationRequest, GenerationResult, SamplingParams
from serve_app.errors import GenerationFailed, InvalidRequest, ParameterError
from serve_app.story.languages import Language
from serve_app.story.output import finished_text
from serve_app.summaries import prompts
from serve_app.summaries.chapters import (
    Span,
    TimedText,
    fallback_chapters,
    parse_answer,
    place_chapters,
    truncate,
)
from serve_app.summaries.results import Chapter, ChunkResult, Clip

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHARS_PER_TOKEN = 3.5
#: Tokens added for the chat template, role markers and rounding.
TEMPLATE_TOKENS = 48
#: The most chapters the fallback makes (and the model is asked for per group).
MAX_CHAPTERS = 12
#: How many chapter / merge calls run at once.
REDUCE_CONCURRENCY = 4
#: How many translation calls run at once.
TRANSLATE_CONCURRENCY = 4
#: The summary made of joined captions or partial summaries is cut to this length.
SUMMARY_FALLBACK_CHARS = 1500


@dataclass(frozen=True)
class Reduction:
    """Chapters (contiguous, covering the clip exactly) and the summary, with costs."""

    chapters: list[Chapter]
    summary: str
    summary_translation: str | None
    input_tokens: int
    output_tokens: int


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` without a tokenizer: ``ceil(len / 3.5)`` (errs high for English)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class _Model:
    """The backend for one reduction: sums token counts, remembers a refused format."""

    def __init__(self, backend: ModelBackend) -> None:
        self.backend = backend
        self.constrain = True
        self.input_tokens = 0
        self.output_tokens = 0

    async def ask(
        self, system: str, prompt: str, max_tokens: int, response_format: str | None = None
    ) -> GenerationResult:
        sampling = SamplingParams(
            max_tokens=max_tokens,
            temperature=0.0,
            response_format=response_format if self.constrain else None,
        )
        request = GenerationRequest(prompt=prompt, system=system, sampling=sampling)
        try:
            result = await self.backend.generate(request)
        except InvalidRequest as exc:
            if sampling.response_format is None or not _refuses_format(exc):
                raise
            logger.info("the text model cannot constrain output; asking without a format")
            self.constrain = False
            unconstrained = dataclasses.replace(sampling, response_format=None)
            result = await self.backend.generate(
                dataclasses.replace(request, sampling=unconstrained)
            )
        self.input_tokens += result.input_tokens
        self.output_tokens += result.output_tokens
        return result


def _refuses_format(exc: InvalidRequest) -> bool:
    if isinstance(exc, ParameterError) and exc.param == "response_format":
        return True
    return "response_format" in exc.detail


async def reduce_captions(
    backend: ModelBackend,
    chunks: Sequence[ChunkResult],
    clip: Clip,
    *,
    summary_prompt: str | None,
    language: Language | None,
    context_tokens: int,
    max_tokens: int,
) -> Reduction:
    """Chapters and a summary of ``clip`` from its chunks' captions (module docstring).

    Raises:
        InvalidRequest: ``context_tokens`` leaves no room for captions after the prompt
            and ``max_tokens``.
        BackendUnavailable: the text model is down.
    """
    style = (summary_prompt or "").strip() or prompts.DEFAULT_SUMMARY_STYLE
    ordered = sorted(chunks, key=lambda c: (c["start_s"], c["index"]))
    captions = [  # the chunks that overlap the clip, clamped to it
        TimedText(
            max(c["start_s"], clip["start_s"]),
            min(c["end_s"], clip["end_s"]),
            chunk_text(c),
            tuple(c["timestamps"]),
        )
        for c in ordered
        if c["start_s"] < clip["end_s"] and c["end_s"] > clip["start_s"]
    ]
    model = _Model(backend)
    per_chapter = max(1, math.ceil(len(captions) / MAX_CHAPTERS))
    if not any(c.text for c in captions):
        chapters = _all_fallback(captions, clip, per_chapter)
        summary = ""
    else:
        chapters, summary = await _reduce(
            model, captions, clip, style, per_chapter, context_tokens, max_tokens
        )
    summary_translation: str | None = None
    if language is not None:
        summary_translation = await _translate(model, chapters, summary, language, max_tokens)
    return Reduction(
        chapters=chapters,
        summary=summary,
        summary_translation=summary_translation,
        input_tokens=model.input_tokens,
        output_tokens=model.output_tokens,
    )


async def _reduce(
    model: _Model,
    captions: list[TimedText],
    clip: Clip,
    style: str,
    per_chapter: int,
    context_tokens: int,
    max_tokens: int,
) -> tuple[list[Chapter], str]:
    fixed = prompts.CHAPTERS_SYSTEM + prompts.chapters_prompt([], style, max_chapters=99)
    budget = _room(fixed, context_tokens, max_tokens)
    lines = [
        _fit(prompts.timed_line(c.start_s, c.end_s, c.text), budget) if c.text else ""
        for c in captions
    ]
    groups = split_groups([estimate_tokens(line) for line in lines], budget)
    spans = _spans(captions, groups, clip)

    async def one(group: range, span: Span) -> tuple[list[Chapter], str]:
        return await _reduce_group(
            model, [lines[i] for i in group if lines[i]], span, style, per_chapter, max_tokens
        )

    done = await bounded_gather(
        [functools.partial(one, g, s) for g, s in zip(groups, spans, strict=True)],
        REDUCE_CONCURRENCY,
    )
    chapters = [chapter for group_chapters, _ in done for chapter in group_chapters]
    if len(done) == 1:
        return chapters, done[0][1]
    partials = [
        TimedText(s.start_s, s.end_s, summary) for s, (_, summary) in zip(spans, done, strict=True)
    ]
    return chapters, await _merge(model, partials, style, context_tokens, max_tokens)


async def _reduce_group(
    model: _Model, lines: list[str], span: Span, style: str, per_chapter: int, max_tokens: int
) -> tuple[list[Chapter], str]:
    """One group's chapters (within ``span``) and partial summary."""
    limit = max(1, min(MAX_CHAPTERS, len(span.starts)))
    prompt = prompts.chapters_prompt(lines, style, max_chapters=limit)
    joined = truncate(" ".join(c for c in span.captions if c), SUMMARY_FALLBACK_CHARS)
    try:
        result = await model.ask(
            prompts.CHAPTERS_SYSTEM, prompt, max_tokens, prompts.CHAPTERS_RESPONSE_FORMAT
        )
    except (InvalidRequest, GenerationFailed) as exc:
        logger.warning("chapters call failed (%s); using the fallback", exc)
        return fallback_chapters(span, per_chapter), joined
    answer = parse_answer(result.text)
    chapters = place_chapters(answer.chapters, span)
    if chapters is None:
        chapters = fallback_chapters(span, per_chapter)
    if answer.summary:
        return chapters, answer.summary
    if answer.structured:
        return chapters, joined
    return chapters, _text_or(result, joined)


async def _merge(
    model: _Model, parts: list[TimedText], style: str, context_tokens: int, max_tokens: int
) -> str:
    """One summary from the partial summaries, merged in rounds of groups that fit."""
    budget = _room(
        prompts.MERGE_SYSTEM + prompts.merge_prompt([], style), context_tokens, max_tokens
    )
    while len(parts) > 1:
        lines = [_fit(prompts.timed_line(p.start_s, p.end_s, p.text), budget // 2) for p in parts]
        groups = split_groups([estimate_tokens(line) for line in lines], budget)

        calls = [
            functools.partial(
                _merge_one, model, [parts[i] for i in g], [lines[i] for i in g], style, max_tokens
            )
            for g in groups
        ]
        merged = await bounded_gather(calls, REDUCE_CONCURRENCY)
        parts = [
            TimedText(parts[g[0]].start_s, parts[g[-1]].end_s, text)
            for g, text in zip(groups, merged, strict=True)
        ]
    return parts[0].text


async def _merge_one(
    model: _Model, parts: list[TimedText], lines: list[str], style: str, max_tokens: int
) -> str:
    """The summary of consecutive ``parts`` (``lines`` as the model reads them)."""
    fallback = truncate(" ".join(p.text for p in parts), SUMMARY_FALLBACK_CHARS)
    try:
        result = await model.ask(
            prompts.MERGE_SYSTEM, prompts.merge_prompt(lines, style), max_tokens
        )
    except (InvalidRequest, GenerationFailed) as exc:
        logger.warning("summary merge call failed (%s); joining the parts", exc)
        return fallback
    return _text_or(result, fallback)


async def translate_texts(
    backend: ModelBackend, texts: Sequence[str], language: Language, *, max_tokens: int
) -> tuple[list[str], int, int]:
    """Each of ``texts`` in ``language`` (one call each, at most
    :data:`TRANSLATE_CONCURRENCY` at once), with the input and output tokens spent.

    An empty text gives ``""`` and a text without letters (a time range) itself, with
    no call; a call that fails or answers nothing gives ``""``.
    """
    system = prompts.translation_system(language)
    sampling = SamplingParams(max_tokens=max_tokens, temperature=0.0)

    async def one(text: str) -> tuple[str, int, int]:
        if not any(char.isalpha() for char in text):
            return text.strip(), 0, 0
        request = GenerationRequest(prompt=text, system=system, sampling=sampling)
        try:
            result = await backend.generate(request)
        except GenerationFailed as exc:
            logger.warning("translation failed (%s)", exc)
            return "", 0, 0
        try:
            translated, _ = finished_text(result, "translation")
        except GenerationFailed:
            translated = ""
        return translated, result.input_tokens, result.output_tokens

    done = await bounded_gather([functools.partial(one, t) for t in texts], TRANSLATE_CONCURRENCY)
    return (
        [t for t, _, _ in done],
        sum(i for _, i, _ in done),
        sum(o for _, _, o in done),
    )


async def _translate(
    model: _Model, chapters: list[Chapter], summary: str, language: Language, max_tokens: int
) -> str | None:
    """Attach title/description translations to ``chapters``; the summary's translation."""
    texts = [summary, *(c["title"] for c in chapters), *(c["description"] for c in chapters)]
    translated, spent_in, spent_out = await translate_texts(
        model.backend, texts, language, max_tokens=max_tokens
    )
    model.input_tokens += spent_in
    model.output_tokens += spent_out
    titles = translated[1 : 1 + len(chapters)]
    descriptions = translated[1 + len(chapters) :]
    for chapter, title, description in zip(chapters, titles, descriptions, strict=True):
        if title:
            chapter["title_translation"] = title
        if description:
            chapter["description_translation"] = description
    return translated[0] or None


def split_groups(sizes: Sequence[int], budget: int) -> list[range]:
    """Consecutive index ranges whose ``sizes`` sum to at most ``budget`` (each range
    holds at least one index, so an item larger than ``budget`` gets one alone)."""
    groups: list[range] = []
    first, total = 0, 0
    for i, size in enumerate(sizes):
        if i > first and total + size > budget:
            groups.append(range(first, i))
            first, total = i, 0
        total += size
    if sizes:
        groups.append(range(first, len(sizes)))
    return groups


async def bounded_gather(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Results of ``calls`` in order, at most ``limit`` running at once; the first
    failure cancels the rest and is raised."""
    semaphore = asyncio.Semaphore(limit)

    async def run(call: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await call()

    tasks = [asyncio.ensure_future(run(call)) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def _room(fixed_prompt: str, context_tokens: int, max_tokens: int) -> int:
    room = context_tokens - max_tokens - TEMPLATE_TOKENS - estimate_tokens(fixed_prompt)
    if room < 32:
        raise InvalidRequest(
            f"the text model's context ({context_tokens} tokens) leaves no room for captions "
            f"after the prompt and max_tokens={max_tokens}"
        )
    return room


def _fit(line: str, budget: int) -> str:
    """``line`` cut so that its estimate is at most ``budget`` tokens."""
    return (
        line if estimate_tokens(line) <= budget else truncate(line, int(budget * CHARS_PER_TOKEN))
    )


def _text_or(result: GenerationResult, fallback: str) -> str:
    """The answer's finished text, or ``fallback`` when it is empty or unusable."""
    try:
        text, _ = finished_text(result, "summary")
    except GenerationFailed:
        return fallback
    return text


def chunk_text(chunk: ChunkResult) -> str:
    """A chunk as the reduce step reads it: its caption, then what is said in it."""
    caption = chunk["caption"].strip()
    speech = " ".join(s["text"] for s in chunk.get("transcript", []) if s["text"].strip())
    if not speech:
        return caption
    return f'{caption} Speech: "{speech}"'.strip()


def _spans(captions: Sequence[TimedText], groups: Sequence[range], clip: Clip) -> list[Span]:
    """Each group's stretch: from its first chunk's start (the clip's start for the
    first) to the next group's first start (the clip's end for the last)."""
    spans = []
    for n, group in enumerate(groups):
        start = clip["start_s"] if n == 0 else captions[group[0]].start_s
        end = captions[groups[n + 1][0]].start_s if n + 1 < len(groups) else clip["end_s"]
        starts, texts = [start], [captions[group[0]].text]
        for i in group[1:]:
            if captions[i].start_s > starts[-1]:
                starts.append(captions[i].start_s)
                texts.append(captions[i].text)
            else:  # a chunk starting where the previous one does: one chapter boundary
                texts[-1] = f"{texts[-1]} {captions[i].text}".strip()
        frames = sorted(
            {t for i in group for t in captions[i].frames if start <= t < end or t == end}
        )
        spans.append(Span(start, end, tuple(starts), tuple(texts), tuple(frames)))
    return spans


def _all_fallback(captions: list[TimedText], clip: Clip, per_chapter: int) -> list[Chapter]:
    if not captions:
        return fallback_chapters(Span(clip["start_s"], clip["end_s"], (clip["start_s"],), ("",)), 1)
    [span] = _spans(captions, [range(len(captions))], clip)
    return fallback_chapters(span, per_chapter)
