"""The fusion helpers: the audio option, where the speech goes, what is reported."""

from __future__ import annotations

import pytest

from serve_app.engines.base import ChatTurn, MediaSlot
from serve_app.errors import InvalidRequest
from serve_app.media.sampling import SamplingSpec
from serve_app.pipeline.protocol import ChatJob, DescribeJob
from serve_app.pipeline.speech import (
    NOT_ENABLED,
    AudioMode,
    check_audio,
    speech_prompt,
    transcript_report,
)
from serve_app.speech.backend import AudioOutcome
from serve_app.speech.base import Segment, Transcript

HEARD = AudioOutcome(Transcript((Segment(1.04, 3.456, "hello there"),), audio_s=5))


class _Speech:
    """Only its presence matters to ``check_audio`` (no call is made)."""


def test_the_audio_option() -> None:
    speech = _Speech()
    assert check_audio(None, None) is AudioMode.OFF
    assert check_audio("off", None) is AudioMode.OFF
    assert check_audio("transcribe", speech) is AudioMode.TRANSCRIBE  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="not enabled"):
        check_audio("transcribe", None)
    with pytest.raises(InvalidRequest, match="audio must be one of 'off', 'transcribe'"):
        check_audio("loud", speech)  # type: ignore[arg-type]
    assert NOT_ENABLED.endswith("(settings.speech.backend)")


def test_speech_joins_the_prompt_after_it() -> None:
    text = speech_prompt(HEARD)
    assert text == "Speech in the video (seconds from the start):\n[1.0-3.5] hello there"
    job = DescribeJob(media=b"", prompt="Describe.", model="m", spec=SamplingSpec(interval=1))
    assert job.with_context(text).prompt == f"Describe.\n\n{text}"
    assert job.with_context("") is job
    assert speech_prompt(AudioOutcome(Transcript(), "corrupt")) == ""


def test_speech_follows_the_video_in_a_conversation() -> None:
    turns = (
        ChatTurn("system", ("Be brief.",)),
        ChatTurn("user", ("Look:", MediaSlot.VIDEO, "What is said?")),
    )
    job = ChatJob(model="m", conversation=turns)
    assert job.with_context("SPEECH").conversation == (
        turns[0],
        ChatTurn("user", ("Look:", MediaSlot.VIDEO, "SPEECH", "What is said?")),
    )
    no_video = ChatJob(model="m", conversation=(ChatTurn("user", ("Hi",)),))
    assert no_video.with_context("SPEECH").conversation[0].parts == ("Hi", "SPEECH")


def test_the_report() -> None:
    assert transcript_report(HEARD) == {
        "segments": [{"start_s": 1.04, "end_s": 3.456, "text": "hello there"}],
        "skipped": None,
    }
    skipped = AudioOutcome(Transcript(has_audio=False), "the audio track is corrupt")
    assert transcript_report(skipped) == {
        "segments": [],
        "skipped": "audio skipped: the audio track is corrupt",
    }
