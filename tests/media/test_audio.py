"""Audio decoding: probe, 16 kHz mono chunks in the video's timeline, clips, faults."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from serve_app.media.audio import (
    SAMPLE_RATE,
    AudioChunk,
    AudioDecodeFailed,
    NoAudioStream,
    is_silent,
    iter_audio_chunks,
    probe_audio,
)
from tests.support.media_files import make_video
from tests.support.speech_media import SpeechVideo, corrupt_audio_packets, make_speech_video


def _loud_spans(chunks: list[AudioChunk], threshold: float = 0.02) -> np.ndarray:
    samples = np.concatenate([c.samples for c in chunks])
    return np.flatnonzero(np.abs(samples) > threshold) / SAMPLE_RATE + chunks[0].start_s


def test_probe_reports_the_audio_stream(speech_video: SpeechVideo) -> None:
    info = probe_audio(speech_video.path)
    assert info is not None
    assert (info.codec, info.sample_rate, info.channels) == ("aac", 48000, 1)
    assert info.duration_s == pytest.approx(15.0, abs=0.1)


def test_probe_without_audio_is_none(tmp_path: Path) -> None:
    assert probe_audio(make_video(tmp_path / "v.mp4", frames=10)) is None


def test_chunks_are_contiguous_16k_mono_and_keep_time(speech_video: SpeechVideo) -> None:
    chunks = list(iter_audio_chunks(speech_video.path, chunk_s=4.0))
    assert [c.start_s for c in chunks] == pytest.approx([0, 4, 8, 12], abs=0.03)
    assert all(c.samples.dtype == np.float32 and c.samples.ndim == 1 for c in chunks)
    assert all(len(c.samples) == 4 * SAMPLE_RATE for c in chunks[:-1])
    assert sum(c.duration_s for c in chunks) == pytest.approx(15.0, abs=0.05)
    # The first sentence is audible where it was placed, and not before.
    loud = _loud_spans(chunks)
    assert loud[0] == pytest.approx(speech_video.placed[0].start_s, abs=0.05)


def test_a_clip_starts_and_ends_where_asked(speech_video: SpeechVideo) -> None:
    second = speech_video.placed[1]
    chunks = list(iter_audio_chunks(speech_video.path, chunk_s=30, start_s=5.0, end_s=9.5))
    assert len(chunks) == 1
    assert chunks[0].start_s == pytest.approx(5.0, abs=1e-3)
    assert chunks[0].duration_s == pytest.approx(4.5, abs=1e-3)
    loud = _loud_spans(chunks)
    assert loud[0] == pytest.approx(second.start_s, abs=0.05)
    assert loud[-1] == pytest.approx(second.end_s, abs=0.05)


def test_a_clip_beyond_the_audio_yields_nothing(speech_video: SpeechVideo) -> None:
    assert list(iter_audio_chunks(speech_video.path, start_s=20.0)) == []


def test_silence_decodes_and_is_silent(tmp_path: Path) -> None:
    path, _ = make_speech_video(tmp_path / "s.mp4", [], 3.0, audio="silence")
    chunks = list(iter_audio_chunks(path, chunk_s=1.0))
    assert sum(c.duration_s for c in chunks) == pytest.approx(3.0, abs=0.05)
    assert chunks and all(is_silent(c) for c in chunks)


def test_no_audio_stream_is_a_typed_error(tmp_path: Path) -> None:
    path, _ = make_speech_video(tmp_path / "n.mp4", [], 2.0, audio="none")
    with pytest.raises(NoAudioStream, match="no audio track"):
        list(iter_audio_chunks(path))


def test_a_corrupt_audio_stream_is_a_typed_error(speech_video: SpeechVideo, tmp_path: Path) -> None:
    bad = corrupt_audio_packets(speech_video.path, tmp_path / "bad.mp4")
    with pytest.raises(AudioDecodeFailed, match="corrupt"):
        list(iter_audio_chunks(bad))


def test_memory_is_bounded_by_the_chunk_not_the_video(tmp_path: Path) -> None:
    path, _ = make_speech_video(tmp_path / "long.mp4", [], 120.0, fps=1, audio="silence")
    tracemalloc.start()
    try:
        seconds = sum(c.duration_s for c in iter_audio_chunks(path, chunk_s=5.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds == pytest.approx(120.0, abs=0.1)
    # 120 s at 16 kHz float32 is 7.7 MB; one 5 s chunk (plus its parts) is ~0.7 MB.
    assert peak < 2_500_000


def test_chunk_validates_its_samples() -> None:
    with pytest.raises(ValueError, match="float32"):
        AudioChunk(np.zeros(10, np.float64), 0.0)
