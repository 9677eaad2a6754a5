from __future__ import annotations

import json

import jsonschema
import pytest

from serve_app.engines.vllm_engine import build_structured_outputs
from serve_app.story.languages import resolve_language
from serve_app.summaries import prompts


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00:00"), (59.6, "00:01:00"), (90, "00:01:30"), (3723.2, "01:02:03"), (-1, "00:00:00")],
)
def test_format_timecode(seconds: float, text: str) -> None:
    assert prompts.format_timecode(seconds) == text


def test_timed_line() -> None:
    assert prompts.timed_line(90, 120, "A dog.") == "[00:01:30\u201300:02:00] A dog."


def test_chapters_prompt_lists_captions_then_instructions() -> None:
    lines = [prompts.timed_line(0, 30, "One."), prompts.timed_line(30, 60, "Two.")]
    prompt = prompts.chapters_prompt(lines, "Be brief.", max_chapters=2)
    assert prompt.index("[00:00:00\u201300:00:30] One.") < prompt.index("Two.")
    assert prompt.index("Two.") < prompt.index("between 1 and 2 chapters")
    assert prompt.rstrip().endswith("Reply with the JSON object only.")
    assert "Summary instructions: Be brief." in prompt


def test_response_format_is_a_json_schema_vllm_can_use() -> None:
    fmt = json.loads(prompts.CHAPTERS_RESPONSE_FORMAT)
    schema = fmt["json_schema"]["schema"]
    assert build_structured_outputs(prompts.CHAPTERS_RESPONSE_FORMAT) == {"json": schema}
    good = {"chapters": [{"start": "00:00:00", "title": "T", "description": "D"}], "summary": "S"}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"chapters": [{"start": 1}], "summary": "S"}, schema)


def test_translation_system_names_the_language() -> None:
    system = prompts.translation_system(resolve_language("pt-BR"))
    assert "Brazilian Portuguese (language tag pt-BR)" in system
