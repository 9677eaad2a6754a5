"""Response bodies of the Story API (documented in OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serve_app.http.api.schemas import SamplingReport, TranscriptReport
from serve_app.pipeline.speech import transcript_report
from serve_app.story.service import StoryOutcome

#: The language whose translation is returned under its own key, ``thai``.
THAI = "th"


class TokenUsage(BaseModel):
    input_tokens: int = Field(description="Prompt tokens of every model call, visual included.")
    output_tokens: int = Field(description="Generated tokens of every model call.")
    total_tokens: int


class StoryResponse(BaseModel):
    """``thai`` for ``language=th``; ``translation`` and ``language`` otherwise."""

    english: str = Field(description="The story, in English.")
    thai: str | None = Field(None, description="The Thai translation (language 'th').")
    translation: str | None = Field(
        None, description="The translation, for any language other than 'th'."
    )
    language: str | None = Field(
        None, description="BCP-47 tag of the translation (absent for 'th')."
    )
    token_usage: TokenUsage = Field(
        description="Sum over every model call: observations, story and translation."
    )
    sampling: SamplingReport | None = Field(
        None, description="For a video: the frames the model saw (absent for images)."
    )
    transcript: TranscriptReport | None = Field(
        None, description="With audio=transcribe only: the video's speech the model saw."
    )


def story_body(outcome: StoryOutcome) -> dict[str, Any]:
    """The JSON body for ``outcome`` (keys as documented on :class:`StoryResponse`)."""
    usage = TokenUsage(
        input_tokens=outcome.usage.input_tokens,
        output_tokens=outcome.usage.output_tokens,
        total_tokens=outcome.usage.total_tokens,
    )
    sampling = SamplingReport.model_validate(outcome.videos[0].report()) if outcome.videos else None
    transcript = (
        None
        if outcome.audio is None
        else TranscriptReport.model_validate(transcript_report(outcome.audio))
    )
    if outcome.language.code == THAI:
        response = StoryResponse(
            english=outcome.english,
            thai=outcome.translation,
            token_usage=usage,
            sampling=sampling,
            transcript=transcript,
        )
    else:
        response = StoryResponse(
            english=outcome.english,
            translation=outcome.translation,
            language=outcome.language.code,
            token_usage=usage,
            sampling=sampling,
            transcript=transcript,
        )
    body = response.model_dump(exclude_none=True)
    if transcript is not None:  # ``skipped`` is null when the audio was used
        body["transcript"] = transcript.model_dump()
    return body
