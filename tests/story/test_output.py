"""Judging answers: empty is an error, truncated is trimmed and reported."""

from __future__ import annotations

import pytest

from serve_app.engines.base import GenerationResult
from serve_app.errors import GenerationFailed
from serve_app.story.output import ELLIPSIS, finished_text, trim_to_sentence


def result(text: str, finish_reason: str = "stop") -> GenerationResult:
    return GenerationResult(text=text, input_tokens=1, output_tokens=1, finish_reason=finish_reason)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_answers_fail(text: str) -> None:
    with pytest.raises(GenerationFailed, match="empty story"):
        finished_text(result(text), "story")


def test_complete_answer_is_kept_stripped() -> None:
    assert finished_text(result("  Once upon a time.  \n"), "story") == ("Once upon a time.", False)


def test_truncated_answer_is_trimmed_to_its_last_sentence() -> None:
    text, cut = finished_text(result("It rained. The dog ran home! Then it", "length"), "story")
    assert (text, cut) == ("It rained. The dog ran home!", True)


def test_truncated_answer_without_sentence_end_gets_an_ellipsis() -> None:
    text, cut = finished_text(result("กาลครั้งหนึ่งนานมาแล้ว มีสุนัข", "length"), "translation")
    assert cut and text == "กาลครั้งหนึ่งนานมาแล้ว มีสุนัข" + ELLIPSIS


@pytest.mark.parametrize("reason", ["content_filter", "abort"])
def test_other_finish_reasons_fail(reason: str) -> None:
    with pytest.raises(GenerationFailed, match=reason):
        finished_text(result("Half a sto", reason), "story")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("He said \u201cgo.\u201d Then", "He said \u201cgo.\u201d"),
        ("Pi is 3.14 and", None),
        ("\u732b\u304c\u5bdd\u305f\u3002\u305d\u3057\u3066", "\u732b\u304c\u5bdd\u305f\u3002"),
        ("... and then", None),
        ("Done.", "Done."),
    ],
)
def test_trim_to_sentence(text: str, expected: str | None) -> None:
    assert trim_to_sentence(text) == expected
