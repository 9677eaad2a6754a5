"""What orchestrators get: a transcript, or the audio skipped with its reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from serve_app.errors import BackendUnavailable
from serve_app.media.audio import AudioDecodeFailed
from serve_app.speech.backend import EngineSpeech, transcribe_or_skip
from serve_app.speech.base import Segment, Transcript, prompt_lines
from serve_app.speech.pocketsphinx_engine import PocketsphinxEngine
from tests.support.speech_media import SpeechVideo, corrupt_audio_packets, make_speech_video


@pytest.fixture(scope="module")
async def speech() -> AsyncIterator[EngineSpeech]:
    engine = PocketsphinxEngine()
    await engine.start()
    yield EngineSpeech(engine, chunk_s=10.0)
    await engine.shutdown()


async def test_no_audio_track_is_skipped_with_its_reason(
    speech: EngineSpeech, tmp_path: Path
) -> None:
    path, _ = make_speech_video(tmp_path / "n.mp4", [], 2.0, audio="none")
    assert await speech.transcribe(path) == Transcript(has_audio=False)
    outcome = await transcribe_or_skip(speech, path)
    assert outcome.transcript.segments == ()
    assert outcome.note == "audio skipped: the video has no audio track"


async def test_silence_is_an_empty_transcript_not_a_skip(
    speech: EngineSpeech, tmp_path: Path
) -> None:
    path, _ = make_speech_video(tmp_path / "s.mp4", [], 4.0, audio="silence")
    outcome = await transcribe_or_skip(speech, path.read_bytes())  # inline bytes too
    assert outcome.skipped is None
    assert outcome.transcript.segments == ()
    assert outcome.transcript.audio_s == pytest.approx(4.0, abs=0.05)


async def test_a_corrupt_audio_track_is_skipped(
    speech: EngineSpeech, speech_video: SpeechVideo, tmp_path: Path
) -> None:
    bad = corrupt_audio_packets(speech_video.path, tmp_path / "bad.mp4")
    with pytest.raises(AudioDecodeFailed):
        await speech.transcribe(bad)
    outcome = await transcribe_or_skip(speech, bad)
    assert outcome.note == "audio skipped: the audio track is corrupt"


async def test_an_engine_that_is_down_is_skipped(speech_video: SpeechVideo) -> None:
    down = EngineSpeech(PocketsphinxEngine())  # never started
    assert not await down.ready()
    with pytest.raises(BackendUnavailable):
        await down.transcribe(speech_video.path)
    outcome = await transcribe_or_skip(down, speech_video.path)
    assert outcome.note == "audio skipped: speech recognition is unavailable"


def test_segments_for_a_chunk_and_a_prompt() -> None:
    transcript = Transcript(
        (Segment(1.0, 3.5, "hello there"), Segment(6.0, 8.0, "goodbye")), audio_s=10
    )
    assert transcript.between(0, 2) == transcript.segments[:1]
    assert transcript.between(3.5, 6.0) == ()
    assert transcript.text == "hello there goodbye"
    assert prompt_lines(transcript.segments) == "[1.0-3.5] hello there\n[6.0-8.0] goodbye"
