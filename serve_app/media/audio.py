"""A video's audio track as 16 kHz mono float32 chunks, decoded with PyAV.

:func:`probe_audio` says whether a video has an audio stream (headers only).
:func:`iter_audio_chunks` decodes it, resamples it with ``av.AudioResampler`` and
yields :class:`AudioChunk` objects of ``chunk_s`` seconds (the last one shorter),
each stamped with its start in the video's timeline. Memory is bounded by one chunk
plus one decoded frame, whatever the video's length. Silence is decoded like any
audio (:func:`is_silent` tells it apart). A stream that does not decode raises
:class:`AudioDecodeFailed`; callers that also analyse the pictures catch
:class:`AudioUnavailable` and report the audio as skipped, never failing the visuals.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import av
import av.audio.stream
import av.container
import numpy as np

from serve_app.errors import MediaRejected
from serve_app.media.detect import DEMUXERS, MediaSource, detect_media_type, open_source, read_head
from serve_app.media.frames import MediaKind

#: The sample rate every speech engine takes.
SAMPLE_RATE = 16_000
#: Peak amplitude (of 1.0 full scale) under which a chunk counts as silence (-60 dBFS).
SILENCE_PEAK = 1e-3
#: Packets that fail to decode before the stream is declared corrupt (when at least as
#: many failed as decoded: isolated bad packets are skipped, as players do).
_MAX_BAD_PACKETS = 8


class AudioUnavailable(MediaRejected):
    """The video's audio cannot be used; ``detail`` says why (the visuals are unaffected)."""


class NoAudioStream(AudioUnavailable):
    """The video has no audio track."""


class AudioDecodeFailed(AudioUnavailable):
    """The audio track is corrupt, truncated or in a codec that does not decode."""


@dataclass(frozen=True)
class AudioInfo:
    """What a video's headers say about its first audio stream."""

    codec: str
    sample_rate: int
    channels: int
    #: Seconds, from the stream or the container; ``None`` when neither says.
    duration_s: float | None


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Mono float32 samples at :data:`SAMPLE_RATE`, starting ``start_s`` into the video."""

    samples: np.ndarray
    start_s: float

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.float32:
            raise ValueError("samples must be a 1-D float32 array (mono)")
        if self.start_s < 0:
            raise ValueError("start_s must be >= 0")

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def is_silent(chunk: AudioChunk, peak: float = SILENCE_PEAK) -> bool:
    """Whether every sample of ``chunk`` stays under ``peak`` (digital silence, hum-free)."""
    return chunk.samples.size == 0 or float(np.max(np.abs(chunk.samples))) < peak


@contextmanager
def _open(source: MediaSource) -> Iterator[av.container.InputContainer]:
    detected = detect_media_type(read_head(source))
    if detected.kind is not MediaKind.VIDEO:
        raise NoAudioStream(f"a {detected.format} image has no audio")
    with open_source(source) as f:
        try:
            handle = av.open(f, mode="r", format=DEMUXERS[detected.format], buffer_size=1 << 16)
        except (av.error.FFmpegError, ValueError, OSError, EOFError) as exc:
            raise AudioDecodeFailed("the container does not open") from exc
        with handle:
            yield handle


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    for stream in container.streams.audio:
        return stream
    raise NoAudioStream("the video has no audio track")


def probe_audio(source: MediaSource) -> AudioInfo | None:
    """The first audio stream's codec, rate, channels and duration; ``None`` without one.

    Raises:
        AudioDecodeFailed: the container does not open.
    """
    with _open(source) as container:
        try:
            stream = _audio_stream(container)
        except NoAudioStream:
            return None
        duration: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        ctx = stream.codec_context
        return AudioInfo(
            codec=ctx.name,
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0),
            duration_s=duration,
        )


def iter_audio_chunks(
    source: MediaSource,
    chunk_s: float = 30.0,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> Generator[AudioChunk, None, None]:
    """The audio of ``source`` between ``start_s`` and ``end_s``, in ``chunk_s`` pieces.

    Chunks are contiguous; their ``start_s`` is in the video's timeline (the audio
    stream's first timestamp included). A clip beyond the audio yields nothing.

    Raises:
        NoAudioStream: the video has no audio track.
        AudioDecodeFailed: the container does not open or the stream does not decode.
    """
    if chunk_s <= 0:
        raise ValueError("chunk_s must be > 0")
    if start_s < 0 or (end_s is not None and end_s <= start_s):
        raise ValueError("need 0 <= start_s < end_s")
    per_chunk = max(1, round(chunk_s * SAMPLE_RATE))
    with _open(source) as container:
        stream = _audio_stream(container)
        if start_s > 0:
            _seek(container, stream, start_s)
        chunker = _Chunker(per_chunk, start_s, end_s)
        for samples, at_s in _decoded(container, stream):
            yield from chunker.add(samples, at_s)
            if chunker.done:
                break
        yield from chunker.flush()


def _seek(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, at_s: float
) -> None:
    """Seek a little before ``at_s`` (samples before it are dropped by the chunker)."""
    if stream.time_base is None:
        return
    target = max(0.0, at_s - 1.0)
    try:
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
    except av.error.FFmpegError:  # unseekable: decode from the start instead
        container.seek(0, stream=stream, backward=True)


def _decoded(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[tuple[np.ndarray, float]]:
    """Resampled mono samples and the time of their first sample, frame by frame."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    origin: float | None = None  # time of the first resampled sample
    produced = 0  # samples since origin
    decoded = bad = 0
    try:
        packets = container.demux(stream)
        for packet in packets:
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError) as exc:
                bad += 1
                if bad > _MAX_BAD_PACKETS and bad >= decoded:
                    raise AudioDecodeFailed("the audio track is corrupt") from exc
                continue
            for frame in frames:
                decoded += 1
                if origin is None:
                    origin = max(0.0, float(frame.time or 0.0))
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    yield samples, origin + produced / SAMPLE_RATE
                    produced += samples.size
        for out in resampler.resample(None):
            samples = out.to_ndarray().reshape(-1)
            yield samples, (origin or 0.0) + produced / SAMPLE_RATE
            produced += samples.size
    except (av.error.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise AudioDecodeFailed("the audio track does not decode") from exc
    if decoded == 0 and bad > 0:
        raise AudioDecodeFailed("the audio track is corrupt")


class _Chunker:
    """Cuts a stream of sample runs into fixed-size chunks within a clip."""

    def __init__(self, per_chunk: int, start_s: float, end_s: float | None) -> None:
        self._per_chunk = per_chunk
        self._start_s = start_s
        self._end_s = end_s
        self._parts: list[np.ndarray] = []
        self._size = 0
        self._chunk_start: float | None = None
        self.done = False

    def add(self, samples: np.ndarray, at_s: float) -> Iterator[AudioChunk]:
        skip = max(0, math.ceil((self._start_s - at_s) * SAMPLE_RATE - 1e-6))
        if skip >= samples.size:
            return
        samples, at_s = samples[skip:], at_s + skip / SAMPLE_RATE
        if self._end_s is not None:
            keep = max(0, round((self._end_s - at_s) * SAMPLE_RATE))
            if keep <= samples.size:
                samples, self.done = samples[:keep], True
        if self._chunk_start is None:
            self._chunk_start = at_s
        while samples.size:
            take = min(samples.size, self._per_chunk - self._size)
            self._parts.append(samples[:take])
            self._size += take
            samples = samples[take:]
            if self._size == self._per_chunk:
                yield self._emit()

    def flush(self) -> Iterator[AudioChunk]:
        if self._size:
            yield self._emit()

    def _emit(self) -> AudioChunk:
        start = self._chunk_start if self._chunk_start is not None else self._start_s
        samples = np.concatenate(self._parts).astype(np.float32, copy=False)
        self._parts, self._size = [], 0
        self._chunk_start = start + samples.size / SAMPLE_RATE
        return AudioChunk(samples=samples, start_s=round(start, 6))
