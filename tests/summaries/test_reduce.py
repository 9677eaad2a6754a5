"""The reduce step over the real tiny model and over a scripted text model.

The tiny Qwen2.5-VL writes meaningless text: with it the tests see the fallback, the
JSON-less path and the transformers engine's refusal of ``response_format``. What a
capable model would answer (JSON chapters) cannot be produced here, so
:class:`ScriptedTextModel` stands in for it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable

import pytest

from serve_app.engines.backend import EngineBackend
from serve_app.engines.base import GenerationRequest, GenerationResult
from serve_app.errors import GenerationFailed, InvalidRequest, ParameterError
from serve_app.story.languages import resolve_language
from serve_app.summaries import prompts
from serve_app.summaries.reduce import (
    MAX_CHAPTERS,
    REDUCE_CONCURRENCY,
    TEMPLATE_TOKENS,
    estimate_tokens,
    reduce_captions,
    split_groups,
    translate_texts,
)
from serve_app.summaries.results import Chapter, ChunkResult, Clip
from tests.support.story_engines import RecordingEngine

Answer = Callable[[GenerationRequest], str]
_RANGE = re.compile(r"\[(\d\d):(\d\d):(\d\d)\u2013")


class ScriptedTextModel:
    """A :class:`~serve_app.engines.backend.ModelBackend` test double for a capable text
    model (none can run here): answers each request with ``answer(request)``.

    Every request is recorded; ``input_tokens`` is the prompt's length in characters and
    ``output_tokens`` the answer's, so token sums can be checked. With
    ``refuse_format`` it refuses a ``response_format`` as an engine that cannot
    constrain output does. ``delay_s`` makes calls overlap (``max_in_flight``).
    """

    def __init__(
        self, answer: Answer, *, refuse_format: bool = False, delay_s: float = 0.0
    ) -> None:
        self.answer = answer
        self.refuse_format = refuse_format
        self.delay_s = delay_s
        self.requests: list[GenerationRequest] = []
        self.results: list[GenerationResult] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        if self.refuse_format and request.sampling.response_format is not None:
            raise ParameterError("response_format is not supported", "response_format")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        text = self.answer(request)
        result = GenerationResult(text, len(request.prompt), len(text))
        self.results.append(result)
        return result

    async def ready(self) -> bool:
        return True

    def calls(self, system: str) -> list[GenerationRequest]:
        return [r for r in self.requests if r.system == system]


def chunks(
    n: int, *, start: float = 0.0, chunk_s: float = 30.0, words: int = 4
) -> list[ChunkResult]:
    """``n`` consecutive chunks with distinct captions of about ``words`` words."""
    out = []
    for i in range(n):
        s = start + i * chunk_s
        caption = f"Scene {i}: " + " ".join(f"w{i}x{j}" for j in range(words)) + "."
        out.append(
            ChunkResult(
                index=i,
                start_s=s,
                end_s=s + chunk_s,
                frame_indices=[],
                timestamps=[],
                effective_fps=0.0,
                caption=caption,
                tokens={"input": 0, "output": 0},
            )
        )
    return out


def clip_of(items: list[ChunkResult]) -> Clip:
    return Clip(start_s=items[0]["start_s"], end_s=items[-1]["end_s"])


def prompt_starts(request: GenerationRequest) -> list[int]:
    """The start times (s) of the captions in a chapters prompt."""
    return [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in _RANGE.findall(request.prompt)]


def assert_covers(chapters: list[Chapter], clip: Clip) -> None:
    assert chapters
    assert chapters[0]["start_s"] == clip["start_s"]
    assert chapters[-1]["end_s"] == clip["end_s"]
    for before, after in itertools.pairwise(chapters):
        assert before["end_s"] == after["start_s"]
    assert all(c["start_s"] < c["end_s"] for c in chapters)


def json_answer(chapters: list[dict[str, object]], summary: str = "It all happens.") -> str:
    return json.dumps({"chapters": chapters, "summary": summary})


def total_tokens(model: ScriptedTextModel) -> tuple[int, int]:
    return sum(r.input_tokens for r in model.results), sum(r.output_tokens for r in model.results)


async def reduce(model: object, items: list[ChunkResult], **kwargs: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {
        "summary_prompt": None,
        "language": None,
        "context_tokens": 8192,
        "max_tokens": 256,
    }
    options.update(kwargs)
    clip = options.pop("clip", None) or clip_of(items)
    return await reduce_captions(model, items, clip, **options)  # type: ignore[arg-type]


# -- a capable model (scripted) --------------------------------------------------------


async def test_chapters_are_parsed_snapped_sorted_and_cover_the_clip() -> None:
    # Ten 30 s chunks of a clip from 60 s to 360 s.
    items = chunks(10, start=60.0)
    answer = json_answer(
        [
            {"start": "00:04:01", "title": "Middle", "description": "The middle."},
            {"start": "00:01:00", "title": "Opening", "description": "The start."},
            {"start": "04:11", "title": "Middle twice", "description": "Dropped."},
            {"start": "00:05:40", "title": "End", "description": "The end."},
            {"start": "whenever", "title": "Unreadable", "description": "Dropped."},
            {"start": "02:00:00", "title": "Beyond", "description": "Past the clip."},
        ],
        "A summary.",
    )
    model = ScriptedTextModel(lambda r: f"Here you go:\n```json\n{answer}\n```")
    result = await reduce(model, items, summary_prompt="Be brief.")
    assert [(c["start_s"], c["end_s"], c["title"]) for c in result.chapters] == [
        (60.0, 240.0, "Opening"),
        (240.0, 330.0, "Middle"),  # 4:01 and 4:11 snap to the chunk at 4:00; the first wins
        (330.0, 360.0, "End"),  # 5:40 and 2:00:00 (clamped) snap to the last chunk, 5:30
    ]
    assert_covers(result.chapters, clip_of(items))
    assert result.summary == "A summary."
    assert result.summary_translation is None
    [request] = model.requests
    assert request.system == prompts.CHAPTERS_SYSTEM
    assert "[00:01:00\u201300:01:30] Scene 0:" in request.prompt
    assert "Summary instructions: Be brief." in request.prompt
    assert request.sampling.response_format == prompts.CHAPTERS_RESPONSE_FORMAT
    assert (result.input_tokens, result.output_tokens) == total_tokens(model)


async def test_chapter_times_snap_to_the_frames_the_model_saw() -> None:
    # Two 30 s chunks whose frames were sampled at 7.5 s intervals from 3.75 s.
    items = chunks(2)
    for item in items:
        item["timestamps"] = [item["start_s"] + 3.75 + 7.5 * k for k in range(4)]
    answer = json_answer(
        [
            {"start": "0:00", "title": "A", "description": "a"},
            {"start": "0:20", "title": "B", "description": "b"},  # frames at 18.75, 26.25
            {"start": "0:44", "title": "C", "description": "c"},  # 41.25 and 48.75: nearer
        ]
    )
    result = await reduce(ScriptedTextModel(lambda r: answer), items)
    assert [c["start_s"] for c in result.chapters] == [0.0, 18.75, 41.25]
    assert_covers(result.chapters, clip_of(items))


async def test_chapter_texts_missing_from_the_answer_come_from_the_captions() -> None:
    items = chunks(4)
    model = ScriptedTextModel(lambda r: json.dumps({"chapters": [{"start": "00:00:30"}]}))
    result = await reduce(model, items)
    [chapter] = result.chapters
    assert (chapter["start_s"], chapter["end_s"]) == (0.0, 120.0)
    assert chapter["title"] == "Scene 0: w0x0 w0x1 w0x2 w0x3."
    assert chapter["description"].startswith("Scene 0: ")
    # JSON without a summary: the summary is the captions joined, not the raw JSON.
    assert result.summary.startswith("Scene 0: w0x0") and "Scene 3" in result.summary


async def test_hierarchical_reduction_splits_and_merges() -> None:
    items = chunks(40, words=30)  # ~60 tokens a caption line by the estimate

    def answer(request: GenerationRequest) -> str:
        if request.system == prompts.MERGE_SYSTEM:
            return f"Merged {request.prompt.count(chr(0x2013))} parts."
        starts = prompt_starts(request)
        return json_answer(
            [{"start": s, "title": f"At {s}", "description": "d"} for s in starts[::2]],
            f"Partial from {starts[0]} to {starts[-1]}.",
        )

    model = ScriptedTextModel(answer, delay_s=0.01)
    context, max_tokens = 900, 128
    result = await reduce(model, items, context_tokens=context, max_tokens=max_tokens)

    groups = model.calls(prompts.CHAPTERS_SYSTEM)
    merges = model.calls(prompts.MERGE_SYSTEM)
    assert len(groups) > 1
    assert len(merges) >= 1
    assert len(model.requests) == len(groups) + len(merges)
    for request in model.requests:  # every call fits the context by the estimate
        size = estimate_tokens(request.system or "") + estimate_tokens(request.prompt)
        assert size + TEMPLATE_TOKENS + max_tokens <= context
    # Groups take consecutive captions, each once, in order.
    seen = [s for request in groups for s in prompt_starts(request)]
    assert sorted(seen) == [int(c["start_s"]) for c in items]
    # Chapters of the groups are concatenated: one at every other caption of each group.
    expected = [s for request in groups for s in prompt_starts(request)[::2]]
    assert [c["start_s"] for c in result.chapters] == expected
    assert_covers(result.chapters, clip_of(items))
    assert result.summary.startswith("Merged")
    assert model.max_in_flight > 1  # the groups ran concurrently
    assert (result.input_tokens, result.output_tokens) == total_tokens(model)


async def test_merging_recurses_until_one_summary_fits() -> None:
    items = chunks(60, words=30)

    def answer(request: GenerationRequest) -> str:
        if request.system == prompts.MERGE_SYSTEM:
            return "Merged. " + "x " * 200  # long partial summaries: another round needed
        return json_answer([{"start": 0, "title": "t", "description": "d"}], "p " * 200)

    model = ScriptedTextModel(answer)
    result = await reduce(model, items, context_tokens=700, max_tokens=128)
    merges = model.calls(prompts.MERGE_SYSTEM)
    merged_inputs = [m.prompt.count("\u2013") for m in merges]
    assert len(merges) > 2 and max(merged_inputs) >= 2
    # The last merge call summarises the whole clip.
    assert "[00:00:00\u2013" in merges[-1].prompt and "00:30:00]" in merges[-1].prompt
    assert result.summary.startswith("Merged.")
    assert_covers(result.chapters, clip_of(items))


async def test_translations_are_attached_and_counted() -> None:
    items = chunks(6)

    def answer(request: GenerationRequest) -> str:
        if request.system == prompts.translation_system(resolve_language("th")):
            return f"TH({request.prompt})"
        return json_answer(
            [
                {"start": "00:00:00", "title": "One", "description": "First."},
                {"start": "00:01:30", "title": "Two", "description": "Second."},
            ],
            "Summary.",
        )

    model = ScriptedTextModel(answer, delay_s=0.01)
    result = await reduce(model, items, language=resolve_language("th"))
    assert result.summary_translation == "TH(Summary.)"
    assert [(c["title_translation"], c["description_translation"]) for c in result.chapters] == [
        ("TH(One)", "TH(First.)"),
        ("TH(Two)", "TH(Second.)"),
    ]
    assert len(model.requests) == 1 + 5  # chapters call, then summary + 2 titles + 2 descriptions
    assert 1 < model.max_in_flight <= 4
    assert (result.input_tokens, result.output_tokens) == total_tokens(model)


async def test_translate_texts_skips_empty_texts_and_survives_failures() -> None:
    class Flaky(ScriptedTextModel):
        async def generate(self, request: GenerationRequest) -> GenerationResult:
            if request.prompt == "boom":
                self.requests.append(request)
                raise GenerationFailed("nothing came back")
            return await super().generate(request)

    model = Flaky(lambda r: "" if r.prompt == "blank" else f"<{r.prompt}>")
    texts, spent_in, spent_out = await translate_texts(
        model,
        ["a", "", "boom", "blank", "bc", " 00:01\u201300:02 "],
        resolve_language("ja"),
        max_tokens=32,
    )
    assert texts == ["<a>", "", "", "", "<bc>", "00:01\u201300:02"]
    assert [r.prompt for r in model.requests] == ["a", "boom", "blank", "bc"]
    assert (spent_in, spent_out) == total_tokens(model)
    assert all(r.sampling.max_tokens == 32 for r in model.requests)


async def test_a_refused_response_format_is_retried_without_it_once() -> None:
    items = chunks(60, words=30)
    answer = json_answer([{"start": 0, "title": "t", "description": "d"}])
    model = ScriptedTextModel(lambda r: answer, refuse_format=True)
    result = await reduce(model, items, context_tokens=900, max_tokens=128)
    calls = model.calls(prompts.CHAPTERS_SYSTEM)
    groups = {r.prompt for r in calls}
    constrained = [r for r in calls if r.sampling.response_format is not None]
    assert len(groups) > REDUCE_CONCURRENCY
    # Only the calls already under way when the first refusal came were refused...
    assert 1 <= len(constrained) <= REDUCE_CONCURRENCY
    assert calls[0].sampling.response_format == prompts.CHAPTERS_RESPONSE_FORMAT
    # ...and every group was answered once without the format.
    assert len(calls) - len(constrained) == len(groups)
    assert len(result.chapters) == len(groups)
    assert_covers(result.chapters, clip_of(items))


async def test_other_refusals_are_not_mistaken_for_the_format() -> None:
    class Broken(ScriptedTextModel):
        async def generate(self, request: GenerationRequest) -> GenerationResult:
            self.requests.append(request)
            raise InvalidRequest("the prompt is 9999 tokens; the model's limit is 8192")

    model = Broken(lambda r: "")
    result = await reduce(model, chunks(3))
    assert len(model.requests) == 1  # not retried; the group falls back
    assert [c["title"] for c in result.chapters] == [
        "Scene 0: w0x0 w0x1 w0x2 w0x3.",
        "Scene 1: w1x0 w1x1 w1x2 w1x3.",
        "Scene 2: w2x0 w2x1 w2x2 w2x3.",
    ]
    assert result.summary.startswith("Scene 0:")


# -- unusable answers: the deterministic fallback --------------------------------------


async def test_garbage_answer_gives_fallback_chapters_and_the_raw_text_summary() -> None:
    items = chunks(30)
    model = ScriptedTextModel(lambda r: "  lorem ipsum dolor, no JSON here  ")
    result = await reduce(model, items)
    per = -(-30 // MAX_CHAPTERS)  # 3 chunks a chapter: 10 chapters
    assert [c["start_s"] for c in result.chapters] == [i * 30.0 * per for i in range(10)]
    assert result.chapters[1]["title"] == "Scene 3: w3x0 w3x1 w3x2 w3x3."
    assert result.chapters[1]["description"] == " ".join(items[i]["caption"] for i in range(3, 6))
    assert_covers(result.chapters, clip_of(items))
    assert result.summary == "lorem ipsum dolor, no JSON here"


async def test_empty_answer_gives_the_captions_as_summary() -> None:
    items = chunks(3)
    model = ScriptedTextModel(lambda r: "   ")
    result = await reduce(model, items)
    assert result.summary == " ".join(c["caption"] for c in items)
    assert len(result.chapters) == 3


async def test_no_captions_means_no_calls() -> None:
    items = chunks(5)
    for item in items:
        item["caption"] = "  "
    model = ScriptedTextModel(lambda r: "unused")
    result = await reduce(model, items, language=resolve_language("th"))
    assert model.requests == []
    assert result.summary == "" and result.summary_translation is None
    assert_covers(result.chapters, clip_of(items))
    assert result.chapters[0]["title"] == "00:00:00\u201300:00:30"
    assert result.chapters[0]["title_translation"] == result.chapters[0]["title"]
    assert "description_translation" not in result.chapters[0]
    empty = await reduce(model, [], clip=Clip(start_s=5.0, end_s=9.0))
    assert [(c["start_s"], c["end_s"]) for c in empty.chapters] == [(5.0, 9.0)]


async def test_clip_inside_the_chunks_and_unsorted_input() -> None:
    items = chunks(6)  # 0..180 s; the clip is 40..170 s and the chunks come shuffled
    clip = Clip(start_s=40.0, end_s=170.0)
    shuffled = [items[i] for i in (3, 0, 5, 1, 4, 2)]
    answer = json_answer([{"start": "00:01:30", "title": "b"}, {"start": 0, "title": "a"}])
    model = ScriptedTextModel(lambda r: answer)
    result = await reduce(model, shuffled, clip=clip)
    assert [(c["start_s"], c["end_s"], c["title"]) for c in result.chapters] == [
        (40.0, 90.0, "a"),
        (90.0, 170.0, "b"),
    ]
    assert prompt_starts(model.requests[0]) == [40, 60, 90, 120, 150]  # chunk 0 is outside
    assert "[00:02:30\u201300:02:50] Scene 5" in model.requests[0].prompt


async def test_a_context_too_small_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no room"):
        await reduce(ScriptedTextModel(lambda r: ""), chunks(2), context_tokens=300)


def test_split_groups() -> None:
    assert split_groups([], 10) == []
    assert split_groups([4, 4, 4, 20, 1], 10) == [
        range(0, 2),
        range(2, 3),
        range(3, 4),
        range(4, 5),
    ]
    assert split_groups([0, 0, 3], 3) == [range(0, 3)]


# -- the real tiny model ---------------------------------------------------------------


async def test_tiny_model_end_to_end(tiny_engine) -> None:
    """The tiny model writes meaningless text; its engine refuses ``response_format``."""
    _, engine = tiny_engine
    recording = RecordingEngine(engine)
    items = chunks(14, words=40)
    result = await reduce(
        EngineBackend(recording),
        items,
        language=resolve_language("th"),
        context_tokens=1200,
        max_tokens=12,
    )
    chapter_calls = [r for r in recording.requests if r.system == prompts.CHAPTERS_SYSTEM]
    constrained = [r for r in chapter_calls if r.sampling.response_format is not None]
    groups = {r.prompt for r in chapter_calls}
    assert len(groups) > 1  # hierarchical
    # The engine refused the format; each group was asked again (or first) without it.
    assert 1 <= len(constrained) <= REDUCE_CONCURRENCY
    assert len(chapter_calls) - len(constrained) == len(groups)
    assert any(r.system == prompts.MERGE_SYSTEM for r in recording.requests)
    assert_covers(result.chapters, clip_of(items))
    assert result.summary.strip()
    translations = [r for r in recording.requests if r.system and "translator" in r.system]
    assert len(translations) == 1 + 2 * len(result.chapters)
    assert result.summary_translation
    assert result.input_tokens == sum(r.input_tokens for r in recording.results)
    assert result.output_tokens == sum(r.output_tokens for r in recording.results)
    assert result.output_tokens > 0
