"""The transformers Whisper path end to end on the tiny random-weight Whisper (built offline).

Its text is meaningless; the test proves the real code path: feature extractor,
``generate(return_timestamps=True)``, timestamp tokens parsed into segments that lie
inside the chunk, in the video's timeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serve_app.speech.backend import EngineSpeech
from serve_app.speech.base import AudioChunk
from serve_app.speech.factory import SpeechEngineFactory
from serve_app.speech.settings import TINY_WHISPER, SpeechSettings
from serve_app.speech.whisper_engine import WhisperEngine
from tests.support.speech_media import SpeechVideo


async def test_tiny_whisper_transcribes_a_video(
    tiny_whisper_dir: Path, speech_video: SpeechVideo
) -> None:
    engine = WhisperEngine(str(tiny_whisper_dir), device="cpu", threads=1, max_new_tokens=24)
    await engine.start()
    await engine.check_health()
    transcript = await EngineSpeech(engine, chunk_s=30.0).transcribe(
        speech_video.path, start_s=5.0, end_s=10.0
    )
    assert transcript.has_audio
    assert transcript.audio_s == pytest.approx(5.0, abs=0.01)
    for segment in transcript.segments:
        assert 5.0 - 0.01 <= segment.start_s <= segment.end_s <= 10.0 + 0.01
        assert segment.text and not segment.words
    await engine.shutdown()


async def test_timestamp_tokens_delimit_segments(tiny_whisper_dir: Path) -> None:
    engine = WhisperEngine(str(tiny_whisper_dir), device="cpu")
    await engine.start()
    tok = engine._processor.tokenizer
    ts = tok.convert_tokens_to_ids
    text = tok.encode(" hello there", add_special_tokens=False)
    more = tok.encode(" again", add_special_tokens=False)
    tokens = [ts("<|startoftranscript|>"), ts("<|0.50|>"), *text, ts("<|2.00|>")]
    tokens += [ts("<|3.00|>"), *more, ts("<|endoftext|>")]
    segments = engine.segments_of(tokens)
    assert [(s.start_s, s.end_s, s.text.strip()) for s in segments] == [
        (0.5, 2.0, "hello there"),
        (3.0, 30.0, "again"),  # cut by the window: ends at its end
    ]
    chunk = AudioChunk(np.full(16000 * 4, 0.1, np.float32), start_s=10.0)
    assert engine.max_chunk_s == 30.0
    with pytest.raises(ValueError, match="30"):
        await engine.transcribe(AudioChunk(np.full(16000 * 31, 0.1, np.float32), 0.0))
    assert all(10.0 <= s.start_s <= s.end_s <= 14.0 for s in await engine.transcribe(chunk))


def test_the_factory_builds_the_tiny_whisper_offline(tmp_path: Path) -> None:
    settings = SpeechSettings(backend="whisper", model=TINY_WHISPER, chunk_s=20)
    engine = SpeechEngineFactory(settings, tmp_path)()
    assert isinstance(engine, WhisperEngine)
    assert (tmp_path / "models" / TINY_WHISPER / "config.json").is_file()


def test_whisper_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="30 s"):
        SpeechSettings(backend="whisper", model="openai/whisper-small", chunk_s=60)
    with pytest.raises(ValueError, match="model"):
        SpeechSettings(backend="whisper")
