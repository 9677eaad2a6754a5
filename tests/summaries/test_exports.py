"""Exports of a summary's results: JSON, SRT and WebVTT, read back by maintained parsers
(``srt``, ``webvtt-py``) and by FFmpeg's demuxers and decoders (through PyAV)."""

from __future__ import annotations

import html
import json
from datetime import timedelta
from pathlib import Path

import av
import pytest
import srt
import webvtt

from serve_app.errors import InvalidRequest
from serve_app.summaries.exports import (
    clean_lines,
    content_type,
    export_filename,
    render,
    to_json,
    to_srt,
    to_vtt,
)
from serve_app.summaries.results import Chapter, ChunkResult, SummaryResult

H100 = 100 * 3600.0  # 100 hours: the hours field must widen past two digits

# A caption a model could write (or an attacker could smuggle through one): a fake cue
# timing line, blank lines that would end the cue, control characters, CR LF, tabs, a
# Unicode line separator, markup and entities.
HOSTILE = (
    "A man walks --> left.\r\n\r\n\n"
    "00:00:01,000 --> 00:00:02,000\n"
    "  \x07bell\x1b[31m red\x00 \t tab  \u2028"
    "1 < 2 & 3 > 2 &amp; <b>not bold</b>\n\n"
)
# The same after cleaning (SRT, having no escapes, writes its arrows as "->").
HOSTILE_LINES = [
    "A man walks --> left.",
    "00:00:01,000 --> 00:00:02,000",
    "bell[31m red tab",
    "1 < 2 & 3 > 2 &amp; <b>not bold</b>",
]
THAI = "ชายคนหนึ่งเดินไปทางซ้าย"


def _chunk(
    index: int, start: float, end: float, caption: str, translation: str | None = None
) -> ChunkResult:
    chunk: ChunkResult = {
        "index": index,
        "start_s": start,
        "end_s": end,
        "frame_indices": [index * 10],
        "timestamps": [start],
        "effective_fps": 0.25,
        "caption": caption,
        "tokens": {"input": 100, "output": 20},
    }
    if translation is not None:
        chunk["translation"] = translation
    return chunk


def _result(
    chunks: list[ChunkResult], chapters: list[Chapter] | None = None, language: str | None = None
) -> SummaryResult:
    return {
        "job_id": "job-17",
        "clip": {"start_s": chunks[0]["start_s"], "end_s": chunks[-1]["end_s"]},
        "sampling": {
            "source_fps": 30.0,
            "frames_used": 8 * len(chunks),
            "effective_fps": 0.267,
            "chunk_s": 30.0,
            "overlap_s": 5.0,
            "frames_per_chunk": 8,
        },
        "chunks": chunks,
        "chapters": chapters or [],
        "summary": "A walk." if chapters else None,
        "language": language,
        "tokens": {"input": 100 * len(chunks), "output": 20 * len(chunks)},
    }


# 30 s chunks overlapping by 5 s, one empty caption, one hostile, the last past 100 h
# (a clip late in a very long recording), translated to Thai.
CHUNKS = [
    _chunk(0, 0.0, 30.0, "A man enters.\nHe waves.", "ชายคนหนึ่งเข้ามา\nเขาโบกมือ"),
    _chunk(1, 25.0, 55.0, "  \n\t", ""),  # nothing seen: no cue
    _chunk(2, 50.0, 80.0, HOSTILE, THAI),
    _chunk(3, 75.0, 105.5, "Dog barks.", "สุนัขเห่า"),
    _chunk(4, H100 + 0.001, H100 + 30.999, "Still walking.", "ยังเดินอยู่"),
]
CHAPTERS: list[Chapter] = [
    {
        "start_s": 0.0,
        "end_s": 50.0,
        "title": "Arrival\n\nof a man",
        "description": "He enters and waves.",
        "title_translation": "การมาถึง",
        "description_translation": "เขาเข้ามาและโบกมือ",
    },
    {
        "start_s": 50.0,
        "end_s": H100 + 30.999,
        "title": "The <walk> --> on",
        "description": "",
        "title_translation": "การเดิน",
        "description_translation": "",
    },
]
RESULT = _result(CHUNKS, CHAPTERS, language="th")

# (start ms, end ms): each cue ends where the next one starts; the empty chunk 1 has none.
TIMES = [(0, 30_000), (50_000, 75_000), (75_000, 105_500), (360_000_001, 360_030_999)]
SOURCE = [
    ["A man enters.", "He waves."],
    HOSTILE_LINES,
    ["Dog barks."],
    ["Still walking."],
]
TRANSLATION = [["ชายคนหนึ่งเข้ามา", "เขาโบกมือ"], [THAI], ["สุนัขเห่า"], ["ยังเดินอยู่"]]
BILINGUAL = [s + t for s, t in zip(SOURCE, TRANSLATION, strict=True)]
EXPECTED = {"source": SOURCE, "bilingual": BILINGUAL, "translation": TRANSLATION}


def _srt_text(lines: list[str]) -> str:
    return "\n".join(line.replace("-->", "->") for line in lines)


def _read_srt(text: str) -> list[tuple[int, int, str]]:
    return [
        (c.start // timedelta(milliseconds=1), c.end // timedelta(milliseconds=1), c.content)
        for c in srt.parse(text)
    ]


def _read_vtt(text: str) -> list[tuple[int, int, str]]:
    vtt = webvtt.from_string(text, strict=True)
    return [
        (c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), html.unescape(c.raw_text))
        for c in vtt.captions
    ]


def _read_with_ffmpeg(path: Path) -> list[tuple[int, int, str]]:
    """Cues as FFmpeg's subtitle demuxer and decoder read them (text as plain dialogue)."""
    cues = []
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            assert packet.time_base is not None and packet.duration is not None
            start = packet.pts * packet.time_base * 1000
            end = (packet.pts + packet.duration) * packet.time_base * 1000
            for subtitle in packet.decode():
                text = subtitle.dialogue.decode()  # type: ignore[union-attr]
                cues.append((int(start), int(end), text))
    return cues


@pytest.mark.parametrize("variant", ["source", "bilingual", "translation"])
def test_srt_cues_parse_with_exact_times_and_text(variant: str, tmp_path: Path) -> None:
    text = to_srt(RESULT, variant)
    expected = [
        (start, end, _srt_text(lines))
        for (start, end), lines in zip(TIMES, EXPECTED[variant], strict=True)
    ]
    assert _read_srt(text) == expected
    assert [c.index for c in srt.parse(text)] == [1, 2, 3, 4]
    path = tmp_path / "summary.srt"
    path.write_text(text, encoding="utf-8")
    # FFmpeg reads the text as written except markup: SRT has no escapes, and FFmpeg
    # (like players) renders <b> as bold: the one hostile case SRT cannot carry exactly.
    ffmpeg_expected = [
        (s, e, t.replace("<b>", "{\\b1}").replace("</b>", "{\\b0}")) for s, e, t in expected
    ]
    assert _read_with_ffmpeg(path) == ffmpeg_expected


@pytest.mark.parametrize("variant", ["source", "bilingual", "translation"])
def test_vtt_cues_parse_with_exact_times_and_text(variant: str, tmp_path: Path) -> None:
    text = to_vtt(RESULT, variant)
    expected = [
        (start, end, "\n".join(lines))
        for (start, end), lines in zip(TIMES, EXPECTED[variant], strict=True)
    ]
    assert _read_vtt(text) == expected
    assert [c.identifier for c in webvtt.from_string(text).captions] == [
        "chunk-0",
        "chunk-2",
        "chunk-3",
        "chunk-4",
    ]
    path = tmp_path / "summary.vtt"
    path.write_text(text, encoding="utf-8")
    # VTT escapes markup and "-->", and FFmpeg turns the references back into the text.
    assert _read_with_ffmpeg(path) == expected


def test_timecodes_widen_past_99_hours_and_keep_milliseconds() -> None:
    srt_text = to_srt(RESULT)
    vtt_text = to_vtt(RESULT)
    assert "\n100:00:00,001 --> 100:00:30,999\n" in srt_text
    assert "\n100:00:00.001 --> 100:00:30.999\n" in vtt_text
    assert "\n00:01:15,000 --> 00:01:45,500\n" in srt_text
    assert vtt_text.startswith("WEBVTT\n\n")


def test_no_cue_text_breaks_the_formats() -> None:
    for text, header in ((to_srt(RESULT, "bilingual"), 0), (to_vtt(RESULT, "bilingual"), 1)):
        blocks = [block.split("\n") for block in text.strip("\n").split("\n\n")][header:]
        assert len(blocks) == 4  # no cue was split by a blank line in its text
        for lines in blocks:
            assert " --> " in lines[1]  # identifier, timing, then the text
            assert all(line and line == line.strip() for line in lines[2:])
            assert not any("-->" in line for line in lines[2:])
        assert not any(ch < " " and ch != "\n" for ch in text)


def test_cues_never_overlap_even_when_chunks_do() -> None:
    chunks = [
        _chunk(i, i * 25.0, i * 25.0 + 30.0, f"chunk {i}") for i in range(6)
    ]  # 30 s chunks, 5 s overlap
    cues = _read_srt(to_srt(_result(chunks)))
    assert [(s, e) for s, e, _ in cues] == [
        (0, 25_000), (25_000, 50_000), (50_000, 75_000), (75_000, 100_000),
        (100_000, 125_000), (125_000, 155_000),
    ]  # fmt: skip


def test_a_gap_before_an_empty_caption_is_kept_and_the_previous_cue_ends_at_its_own_end() -> None:
    chunks = [_chunk(0, 0.0, 30.0, "one"), _chunk(1, 25.0, 55.0, ""), _chunk(2, 50.0, 80.0, "two")]
    assert _read_vtt(to_vtt(_result(chunks))) == [(0, 30_000, "one"), (50_000, 80_000, "two")]


def test_partial_results_out_of_order_are_sorted_by_time() -> None:
    chunks = [_chunk(3, 90.0, 120.0, "late"), _chunk(1, 30.0, 60.0, "early")]
    assert _read_srt(to_srt(_result(chunks))) == [
        (30_000, 60_000, "early"),
        (90_000, 120_000, "late"),
    ]


def test_times_convert_to_the_millisecond_without_float_drift() -> None:
    starts = [0.1, 0.3, 1234.567, 3599.999, 7200.005]
    chunks = [_chunk(i, s, s + 0.2, f"c{i}") for i, s in enumerate(starts)]
    cues = _read_vtt(to_vtt(_result(chunks)))
    assert [(s, e) for s, e, _ in cues] == [
        (100, 300), (300, 500), (1_234_567, 1_234_767), (3_599_999, 3_600_199),
        (7_200_005, 7_200_205),
    ]  # fmt: skip


def test_no_captions_give_empty_but_valid_files() -> None:
    result = _result([_chunk(0, 0.0, 30.0, "")])
    assert to_srt(result) == ""
    assert list(srt.parse(to_srt(result))) == []
    assert to_vtt(result) == "WEBVTT\n"
    assert webvtt.from_string(to_vtt(result), strict=True).captions == []


@pytest.mark.parametrize(
    ("variant", "titles"),
    [
        ("source", ["Arrival of a man", "The <walk> --> on"]),
        ("translation", ["การมาถึง", "การเดิน"]),
        ("bilingual", ["Arrival of a man / การมาถึง", "The <walk> --> on / การเดิน"]),
    ],
)
def test_vtt_chapters_track(variant: str, titles: list[str], tmp_path: Path) -> None:
    text = to_vtt(RESULT, variant, track="chapters")
    expected = [(0, 50_000, titles[0]), (50_000, 360_030_999, titles[1])]
    assert _read_vtt(text) == expected
    assert "He enters" not in text  # descriptions stay in the JSON document
    path = tmp_path / "chapters.vtt"
    path.write_text(text, encoding="utf-8")
    assert _read_with_ffmpeg(path) == expected


def test_running_job_has_an_empty_chapters_track() -> None:
    assert to_vtt(_result(CHUNKS, language="th"), track="chapters") == "WEBVTT\n"


def test_translated_variants_need_a_language() -> None:
    result = _result(CHUNKS[:1])  # chunk 0 even carries a translation
    for variant in ("bilingual", "translation"):
        with pytest.raises(InvalidRequest, match=f"variant={variant} needs a job submitted"):
            to_srt(result, variant)
        with pytest.raises(InvalidRequest, match="language"):
            to_vtt(result, variant, track="chapters")
    assert _read_srt(to_srt(result)) == [(0, 30_000, "A man enters.\nHe waves.")]


def test_translated_variants_need_every_captioned_chunk_translated() -> None:
    result = _result([CHUNKS[0], _chunk(5, 30.0, 60.0, "untranslated")], language="th")
    with pytest.raises(InvalidRequest, match="chunk 5 has no translation"):
        to_vtt(result, "translation")
    # An empty caption needs no translation.
    result = _result([CHUNKS[0], _chunk(5, 30.0, 60.0, "")], language="th")
    assert len(_read_vtt(to_vtt(result, "translation"))) == 1


def test_chapter_titles_fall_back_to_a_number_and_to_the_source_title() -> None:
    chapters: list[Chapter] = [
        {"start_s": 0.0, "end_s": 30.0, "title": " \n ", "description": "",
         "title_translation": ""},
        {"start_s": 30.0, "end_s": 60.0, "title": "Dog", "description": "",
         "title_translation": " "},
    ]  # fmt: skip
    result = _result(CHUNKS[:1], chapters, "th")
    for variant in ("source", "bilingual", "translation"):
        titles = [text for _, _, text in _read_vtt(to_vtt(result, variant, "chapters"))]
        assert titles == ["Chapter 1", "Dog"]


def test_translated_chapters_need_translated_titles() -> None:
    chapter: Chapter = {"start_s": 0.0, "end_s": 30.0, "title": "T", "description": "D"}
    with pytest.raises(InvalidRequest, match="chapter 1 has no translated title"):
        to_vtt(_result(CHUNKS[:1], [chapter], "th"), "bilingual", "chapters")


def test_unknown_variant_track_and_format_are_invalid_requests() -> None:
    with pytest.raises(InvalidRequest, match="unknown variant 'french'"):
        to_srt(RESULT, "french")
    with pytest.raises(InvalidRequest, match="unknown track 'subtitles'"):
        to_vtt(RESULT, track="subtitles")
    with pytest.raises(InvalidRequest, match="unknown format 'ass'"):
        render(RESULT, "ass")
    with pytest.raises(InvalidRequest, match="SRT has no chapters track"):
        render(RESULT, "srt", track="chapters")
    with pytest.raises(InvalidRequest, match=r"export\.json holds every"):
        render(RESULT, "json", variant="bilingual")


def test_json_export_round_trips_and_keeps_thai_readable() -> None:
    body = to_json(RESULT)
    assert json.loads(body) == RESULT
    assert THAI.encode("utf-8") in body


def test_render_names_and_types() -> None:
    vtt = render(RESULT, "vtt", variant="translation", track="chapters")
    assert (vtt.media_type, vtt.filename) == (
        "text/vtt; charset=utf-8",
        "summary-job-17.chapters.th.vtt",
    )
    assert vtt.body == to_vtt(RESULT, "translation", "chapters").encode("utf-8")
    assert vtt.content_disposition() == 'attachment; filename="summary-job-17.chapters.th.vtt"'
    srt_export = render(RESULT, "srt", variant="bilingual")
    assert (srt_export.media_type, srt_export.filename) == (
        "application/x-subrip",
        "summary-job-17.bilingual.srt",
    )
    json_export = render(RESULT, "json")
    assert (json_export.media_type, json_export.filename) == (
        "application/json",
        "summary-job-17.json",
    )
    assert content_type("srt") == "application/x-subrip"
    assert export_filename('a"b/../c', "srt") == "summary-a_b____c.srt"


def test_clean_lines() -> None:
    assert clean_lines(HOSTILE) == HOSTILE_LINES
    assert clean_lines("") == []
    assert clean_lines("a\u0085b\rc\x0bd") == ["a", "b", "c", "d"]
    assert clean_lines("lone \ud800 surrogate") == ["lone surrogate"]
    # Joiners that scripts need are not control characters and stay.
    assert clean_lines("\u0915\u094d\u200d\u0937") == ["\u0915\u094d\u200d\u0937"]
