"""Videos whose audio is speech synthesized from known sentences (Debian's espeak-ng).

:func:`make_speech_video` places each sentence at a known offset, with silence between,
on the audio track of a counter video (see :mod:`tests.support.media_files`), and returns
where the speech of each sentence really lies (its first and last audible sample).
:func:`corrupt_audio_packets` overwrites every audio packet's payload, leaving the
video packets intact.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.audio.stream
import av.video.stream
import numpy as np
import pytest

from tests.support.media_files import counter_frame

#: espeak-ng voice and speed (words per minute): the Klatt voice is the one pocketsphinx's
#: US English model recognises best of espeak-ng's voices (measured, see docs/speech.md).
VOICE = "en-us+klatt"
SPEED_WPM = 150
RATE = 48_000
#: Amplitude above which a synthesized sample counts as speech (for the placed spans).
_AUDIBLE = 0.02

#: Everyday sentences (no compounds or names that a dictionary might split differently).
SENTENCES = (
    "please call me tomorrow morning at nine",
    "the weather is cold and the wind is strong",
    "we are going to the market to buy some bread",
    "she opened the door and walked into the room",
)


@dataclass(frozen=True)
class Placed:
    """One sentence on the track: its text and where its speech starts and ends (s)."""

    text: str
    start_s: float
    end_s: float


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, voice: str = VOICE, speed: int = SPEED_WPM) -> np.ndarray:
    """``text`` spoken by espeak-ng, as float32 mono samples at :data:`RATE`."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
            check=True,
            capture_output=True,
        )
        parts = []
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        with av.open(str(wav)) as src:
            for frame in src.decode(audio=0):
                parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(parts).astype(np.float32)


def speech_track(
    placements: list[tuple[float, str]], duration_s: float
) -> tuple[np.ndarray, list[Placed]]:
    """A track of ``duration_s`` with each ``(at_s, text)`` spoken from ``at_s``."""
    track = np.zeros(round(duration_s * RATE), np.float32)
    placed = []
    for at_s, text in placements:
        voice = synthesize(text)
        start = round(at_s * RATE)
        if start + voice.size > track.size:
            raise ValueError(f"{text!r} at {at_s} s does not fit in {duration_s} s")
        track[start : start + voice.size] = voice
        loud = np.flatnonzero(np.abs(voice) > _AUDIBLE)
        placed.append(Placed(text, (start + loud[0]) / RATE, (start + loud[-1]) / RATE))
    return track, placed


def make_speech_video(
    path: str | Path,
    placements: list[tuple[float, str]],
    duration_s: float,
    *,
    fps: int = 5,
    width: int = 96,
    height: int = 64,
    audio: str = "speech",
) -> tuple[Path, list[Placed]]:
    """A counter video of ``duration_s`` with spoken ``placements`` on an AAC track.

    ``audio``: ``speech``; ``silence`` (a track of zeros, placements ignored); or
    ``none`` (no audio stream at all).
    """
    path = Path(path)
    placed: list[Placed] = []
    if audio == "speech":
        track, placed = speech_track(placements, duration_s)
    else:
        track = np.zeros(round(duration_s * RATE), np.float32)
    with av.open(str(path), "w", format="mp4") as out:
        video = cast(av.video.stream.VideoStream, out.add_stream("libx264", fps))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        sound = None
        if audio != "none":
            sound = cast(av.audio.stream.AudioStream, out.add_stream("aac", rate=RATE))
            sound.layout = "mono"
        for i in range(round(duration_s * fps)):
            frame = av.VideoFrame.from_ndarray(counter_frame(i, width, height), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = av.AudioFrame.from_ndarray(track[None, :], format="flt", layout="mono")
            samples.rate, samples.pts = RATE, 0
            out.mux(sound.encode(samples))
            out.mux(sound.encode(None))
    return path, placed


def corrupt_audio_packets(src: str | Path, dst: str | Path, seed: int = 0) -> Path:
    """A copy of ``src`` whose audio packets' bytes are random (video packets intact)."""
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(seed)
    with av.open(str(src)) as container:
        audio = container.streams.audio[0]
        for packet in container.demux(audio):
            if packet.pos is None or packet.pos < 0 or not packet.size:
                continue
            noise = rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes()
            data[packet.pos : packet.pos + packet.size] = noise
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst


# -- fixtures (registered in tests/conftest.py) ------------------------------------------

#: The speech video's sentences and offsets: silence before, between and after.
PLACEMENTS = [(1.0, SENTENCES[0]), (5.5, SENTENCES[1]), (10.5, SENTENCES[2])]
SPEECH_VIDEO_S = 15.0


@dataclass(frozen=True)
class SpeechVideo:
    path: Path
    placed: list[Placed]

    @property
    def reference(self) -> str:
        return " ".join(p.text for p in self.placed)


@pytest.fixture(scope="session")
def speech_video(tmp_path_factory: pytest.TempPathFactory) -> SpeechVideo:
    """A 15 s counter video with three synthesized sentences at known offsets."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (.ci/run installs it from Debian)")
    out = tmp_path_factory.mktemp("speech") / "speech.mp4"
    path, placed = make_speech_video(out, PLACEMENTS, SPEECH_VIDEO_S)
    return SpeechVideo(path, placed)


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from serve_app.speech.factory import ensure_tiny_whisper

    return ensure_tiny_whisper(tmp_path_factory.mktemp("models") / "tiny-random-whisper")
