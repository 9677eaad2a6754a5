"""The prompts: observations numbered, style applied, target language named."""

from __future__ import annotations

from serve_app.story import prompts
from serve_app.story.languages import Language


def test_one_photo_story_prompt() -> None:
    text = prompts.story_prompt(["A dog on a beach."], prompts.DEFAULT_STYLE, video=False)
    assert "Observations of a photo:\nA dog on a beach." in text
    assert prompts.DEFAULT_STYLE in text
    assert text.endswith("Write the story in English.")


def test_several_photos_are_numbered_in_order() -> None:
    text = prompts.story_prompt(["first", "second", "third"], "Make it funny.", video=False)
    assert "Observations of 3 photos, in order:" in text
    assert text.index("Photo 1: first") < text.index("Photo 2: second") < text.index("Photo 3")
    assert "Instructions: Make it funny." in text
    assert prompts.DEFAULT_STYLE not in text


def test_video_story_prompt() -> None:
    text = prompts.story_prompt(["A car drives by."], "Be brief.", video=True)
    assert text.startswith("Observations of a video:\nA car drives by.")


def test_translation_system_names_the_language() -> None:
    system = prompts.translation_system(Language("pt-BR", "Brazilian Portuguese"))
    assert "into Brazilian Portuguese (language tag pt-BR)" in system
    assert "translation only" in system
