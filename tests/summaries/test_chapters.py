from __future__ import annotations

import pytest

from serve_app.summaries.chapters import (
    DESCRIPTION_CHARS,
    TITLE_CHARS,
    Span,
    fallback_chapters,
    first_sentence,
    parse_answer,
    parse_timecode,
    place_chapters,
    snap,
    truncate,
)

# Chunks of 30 s starting at 60 s (a clip from 60 s to 200 s; the last chunk is short).
SPAN = Span(60.0, 200.0, (60.0, 90.0, 120.0, 150.0, 180.0), ("A.", "B.", "C.", "D.", "E."))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("00:01:30", 90.0),
        ("01:30", 90.0),
        ("1:02:03", 3723.0),
        ("75:30", 4530.0),
        ("00:00:12.5", 12.5),
        ("00:00:12,5", 12.5),
        ("[00:01:30\u201300:02:00]", 90.0),
        ("at 02:00 the dog runs", 120.0),
        ("90", 90.0),
        ("90s", 90.0),
        (" 12.25 seconds ", 12.25),
        (45, 45.0),
        (7.5, 7.5),
        ("00:61:00", None),
        ("01:75", None),
        ("soon", None),
        ("", None),
        (-3, None),
        (float("nan"), None),
        (True, None),
        (None, None),
        (["00:01"], None),
    ],
)
def test_parse_timecode(value: object, seconds: float | None) -> None:
    assert parse_timecode(value) == seconds


def test_answer_with_chatter_and_code_fence() -> None:
    text = (
        'Sure! Here it is:\n```json\n{"chapters": [{"start": "00:01:00", "title": "T", '
        '"description": "D"}, "junk"], "summary": " All of it. "}\n```\nEnjoy.'
    )
    answer = parse_answer(text)
    assert answer.structured
    assert answer.chapters == [{"start": "00:01:00", "title": "T", "description": "D"}]
    assert answer.summary == "All of it."


def test_answer_cut_off_keeps_complete_chapters() -> None:
    text = (
        '{"summary": "Dogs \\"play\\".", "chapters": [{"start": "00:01:00", "title": "A"}, '
        '{"start": "00:02:00", "title": "B"}, {"start": "00:03'
    )
    answer = parse_answer(text)
    assert answer.structured
    assert [c["title"] for c in answer.chapters] == ["A", "B"]
    assert answer.summary == 'Dogs "play".'


def test_answer_as_a_list_or_followed_by_a_stray_brace() -> None:
    listed = parse_answer('[{"start": "00:01", "title": "A"}, {"start": "00:02", "title": "B"}]')
    assert [c["title"] for c in listed.chapters] == ["A", "B"]
    assert listed.summary is None
    stray = parse_answer('{"chapters": [{"start": 5}], "summary": "S"} and then }')
    assert (stray.chapters, stray.summary) == ([{"start": 5}], "S")


@pytest.mark.parametrize("text", ["", "no json at all", "{ not json", "[1, 2]", "}{"])
def test_answer_without_usable_json(text: str) -> None:
    answer = parse_answer(text)
    assert answer.chapters == []
    assert answer.summary is None
    assert not answer.structured


def test_answer_json_that_is_not_an_object_of_chapters() -> None:
    answer = parse_answer('{"chapters": "none", "summary": 3}')
    assert answer.structured  # JSON was found: the raw text is no summary
    assert (answer.chapters, answer.summary) == ([], None)


def test_snap_clamps_and_picks_the_nearest_chunk_start() -> None:
    assert snap(0.0, SPAN) == 60.0  # before the span
    assert snap(10_000.0, SPAN) == 180.0  # after it
    assert snap(104.0, SPAN) == 90.0
    assert snap(106.0, SPAN) == 120.0
    assert snap(105.0, SPAN) == 90.0  # a tie goes to the earlier start


def test_place_chapters_snaps_sorts_dedups_and_covers_the_span() -> None:
    items = [
        {"start": "00:02:31", "title": "Third", "description": "d3"},
        {"start": "01:05", "title": "First", "description": "d1"},  # snaps to 60
        {"start": "00:02:02", "title": "Second", "description": "d2"},
        {"start": "00:02:29", "title": "Third again"},  # also 150: the first written wins
        {"start": "never", "title": "Dropped"},
        {"title": "No start"},
        {"start": "9:00:00", "title": "Last", "description": ""},  # clamped, snapped to 180
    ]
    chapters = place_chapters(items, SPAN)
    assert chapters is not None
    assert [(c["start_s"], c["end_s"], c["title"]) for c in chapters] == [
        (60.0, 120.0, "First"),
        (120.0, 150.0, "Second"),
        (150.0, 180.0, "Third"),
        (180.0, 200.0, "Last"),
    ]
    assert chapters[-1]["description"] == "E."  # filled from the chapter's captions


def test_the_first_chapter_is_moved_to_the_span_start() -> None:
    chapters = place_chapters([{"start": "00:02:30", "title": "Late"}], SPAN)
    assert chapters == [
        {"start_s": 60.0, "end_s": 200.0, "title": "Late", "description": "A. B. C. D. E."}
    ]


def test_missing_titles_come_from_captions_and_long_texts_are_cut() -> None:
    span = Span(0.0, 60.0, (0.0, 30.0), ("A dog runs. Then it sits.", ""))
    chapters = place_chapters(
        [{"start": 0, "title": None, "description": "x " * 400}, {"start": 30, "title": 5}],
        span,
    )
    assert chapters is not None
    assert chapters[0]["title"] == "A dog runs."
    assert len(chapters[0]["description"]) <= DESCRIPTION_CHARS
    assert chapters[0]["description"].endswith("\u2026")
    assert chapters[1]["title"] == "00:00:30\u201300:01:00"  # no caption: its time range
    assert chapters[1]["description"] == ""


def test_no_usable_chapter_is_none() -> None:
    assert place_chapters([], SPAN) is None
    assert place_chapters([{"start": "later"}, {"title": "x"}], SPAN) is None


def test_fallback_groups_consecutive_chunks() -> None:
    span = Span(
        0.0,
        150.0,
        (0.0, 30.0, 60.0, 90.0, 120.0),
        ("A cat sleeps on a sofa. It wakes.", "It stretches.", "", "", "A dog " * 40),
    )
    chapters = fallback_chapters(span, 2)
    assert [(c["start_s"], c["end_s"]) for c in chapters] == [(0, 60), (60, 120), (120, 150)]
    assert chapters[0]["title"] == "A cat sleeps on a sofa."
    assert chapters[0]["description"] == "A cat sleeps on a sofa. It wakes. It stretches."
    assert chapters[1]["title"] == "00:01:00\u201300:02:00"
    assert chapters[1]["description"] == ""
    assert len(chapters[2]["title"]) <= TITLE_CHARS
    assert chapters[2]["title"].endswith("\u2026")


def test_truncate_and_first_sentence() -> None:
    assert truncate("  a   b  ", 10) == "a b"
    assert truncate("word " * 10, 12) == "word word\u2026"
    assert len(truncate("x" * 50, 10)) == 10
    assert first_sentence("Hello there. Next one.") == "Hello there."
    assert first_sentence("Version 3.5 is out") == "Version 3.5 is out"
    assert first_sentence("") == ""
