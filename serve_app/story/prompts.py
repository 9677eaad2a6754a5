"""Every prompt of the Story API, in one place.

A story takes three kinds of model calls, each with its own prompt:

1. **Observe** (vision model, one call per image or one for the video):
   :data:`OBSERVE_IMAGE_PROMPT` / :data:`OBSERVE_VIDEO_PROMPT` ask for a factual
   description, not a story, so the story model gets facts to build on.
2. **Write** (story model, text only): :data:`STORY_SYSTEM` plus
   :func:`story_prompt`, which numbers the observations and appends the caller's
   ``prompt`` or, without one, :data:`DEFAULT_STYLE`.
3. **Translate** (story model, text only): :func:`translation_system` names the target
   language; the user turn is the English story and nothing else.

Story and translation are separate calls, so neither answer has to be parsed out of
the other. The caller's prompt is placed after the observations as the style
instruction; the system turns keep the output to the story or translation alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from serve_app.story.languages import Language

#: The style used when a request brings no ``prompt`` (stated in the README).
DEFAULT_STYLE = (
    "Write a short, warm story of about 150 to 250 words for a general audience, "
    "inspired by what the media show. Give it a beginning, a middle and an end, tell it "
    "in the past tense, and keep the people, animals, places and events that were "
    "observed."
)

OBSERVE_IMAGE_PROMPT = (
    "Describe this image in detail: the people, animals and objects in it, what they are "
    "doing, the setting, the time of day, the mood and notable colours. Describe only "
    "what is visible; do not invent a story."
)

OBSERVE_VIDEO_PROMPT = (
    "Describe what happens in this video from beginning to end: the people, animals and "
    "objects, their actions in order, the setting and the mood. Describe only what is "
    "visible; do not invent a story."
)

STORY_SYSTEM = (
    "You are a storyteller. You write stories in English based on observations of "
    "photos or videos. Reply with the story text only: no title, no preface, no notes, "
    "no markdown."
)


def story_prompt(observations: Sequence[str], style: str, *, video: bool) -> str:
    """The story call's user turn: numbered observations, then the style instruction.

    Args:
        observations: one description per image, or one for the video.
        style: the caller's prompt, or :data:`DEFAULT_STYLE`.
        video: whether the observations describe a video.
    """
    if video:
        facts = f"Observations of a video:\n{observations[0]}"
    elif len(observations) == 1:
        facts = f"Observations of a photo:\n{observations[0]}"
    else:
        numbered = "\n\n".join(f"Photo {i}: {text}" for i, text in enumerate(observations, 1))
        facts = f"Observations of {len(observations)} photos, in order:\n\n{numbered}"
    return f"{facts}\n\nInstructions: {style}\n\nWrite the story in English."


def translation_system(language: Language) -> str:
    """The translation call's system turn; its user turn is the English story alone."""
    return (
        f"You are a professional literary translator. Translate the user's English text "
        f"into {language.name} (language tag {language.code}). Keep the meaning, tone, "
        f"names and paragraph breaks. Reply with the translation only: no notes, no "
        f"transliteration, no English."
    )
