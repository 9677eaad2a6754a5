"""Benchmark speech recognition on CPU: real-time factor and memory.

Makes videos whose audio is espeak-ng speech (sentences of ``tests/support/speech_media``
repeated with pauses), then, each case in its own subprocess (wall time, peak RSS growth
over the interpreter's baseline):

- ``decode``: decoding + resampling the audio track to 16 kHz mono chunks alone;
- ``pocketsphinx``: the same, transcribed by pocketsphinx (packaged model);
- ``tiny-whisper``: the same, transcribed by the tiny random-weight Whisper (1 thread,
  at most ``--whisper-tokens`` tokens per 30 s window; its text is meaningless, so this
  is the transformers path's overhead, not a real Whisper's speed).

Real-time factor = seconds of audio per second of wall time (higher is faster).
Memory: the ``decode`` pipeline (``transcribe_media`` with an engine that counts chunks)
over ``--long`` minutes vs ``--short`` minutes of audio must stay flat.

Usage:
    PYTHONPATH=. .venv/bin/python scripts/bench_speech.py [--seconds 60] [--short 10 --long 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_video(path: Path, seconds: float) -> Path:
    """A 1 fps 96x64 counter video with a speech loop on its AAC track, written in pieces."""
    import av
    import numpy as np

    from tests.support.media_files import counter_frame
    from tests.support.speech_media import RATE, SENTENCES, speech_track

    loop_s = 20.0
    loop, _ = speech_track([(1.0, SENTENCES[0]), (7.0, SENTENCES[1]), (13.0, SENTENCES[2])], loop_s)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", 1)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1)
        sound = out.add_stream("aac", rate=RATE)
        sound.layout = "mono"
        frame_still = counter_frame(1, 96, 64)
        for i in range(int(seconds)):
            frame = av.VideoFrame.from_ndarray(frame_still, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 1)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        step = RATE  # one second of audio per frame
        total = int(seconds * RATE)
        for start in range(0, total, step):
            idx = (np.arange(start, min(total, start + step))) % loop.size
            piece = av.AudioFrame.from_ndarray(loop[idx][None, :], format="flt", layout="mono")
            piece.rate, piece.pts = RATE, start
            out.mux(sound.encode(piece))
        out.mux(sound.encode(None))
    return path


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_case(case: str, video: str, tokens: int, data_dir: str) -> dict[str, Any]:
    """One case in this process (called in a subprocess)."""
    import numpy as np  # noqa: F401  (imported before the baseline is read)

    from serve_app.speech.backend import transcribe_media
    from serve_app.speech.base import Segment, SpeechEngine

    class Counting(SpeechEngine):
        name = "decode"

        def __init__(self) -> None:
            self.chunks = 0

        async def start(self) -> None: ...

        async def transcribe(self, chunk: Any) -> list[Segment]:
            self.chunks += 1
            return []

        async def check_health(self) -> None: ...

        async def shutdown(self) -> None: ...

    engine: SpeechEngine
    if case == "decode":
        engine = Counting()
    elif case == "pocketsphinx":
        from serve_app.speech.pocketsphinx_engine import PocketsphinxEngine

        engine = PocketsphinxEngine()
    else:
        import torch  # noqa: F401

        from serve_app.speech.factory import ensure_tiny_whisper
        from serve_app.speech.whisper_engine import WhisperEngine

        model = ensure_tiny_whisper(Path(data_dir) / "tiny-random-whisper")
        engine = WhisperEngine(str(model), device="cpu", threads=1, max_new_tokens=tokens)
    asyncio.run(engine.start())
    baseline = _rss_kib()
    start = time.perf_counter()
    transcript = asyncio.run(transcribe_media(engine, Path(video), chunk_s=30.0))
    wall = time.perf_counter() - start
    return {
        "case": case,
        "audio_s": transcript.audio_s,
        "wall_s": round(wall, 2),
        "rtf": round(transcript.audio_s / wall, 2),
        "segments": len(transcript.segments),
        "peak_rss_growth_mib": round((_rss_kib() - baseline) / 1024, 1),
        "peak_rss_mib": round(_rss_kib() / 1024, 1),
    }


def subprocess_case(case: str, video: Path, tokens: int, data_dir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--case", case, str(video), str(tokens), str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio for the RTF cases")
    parser.add_argument("--short", type=float, default=10.0, help="minutes, memory case")
    parser.add_argument("--long", type=float, default=60.0, help="minutes, memory case")
    parser.add_argument("--whisper-tokens", type=int, default=32)
    parser.add_argument("--memory-only", action="store_true", help="skip the RTF cases")
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        case, video, tokens, data_dir = args.case
        print(json.dumps(run_case(case, video, int(tokens), data_dir)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-speech-") as tmp:
        root = Path(tmp)
        if not args.memory_only:
            clip = make_video(root / "clip.mp4", args.seconds)
            print(f"# real-time factor, {args.seconds:g} s of espeak-ng speech, 1 CPU thread")
            for case in ("decode", "pocketsphinx", "tiny-whisper"):
                print(json.dumps(subprocess_case(case, clip, args.whisper_tokens, root)))
        print(f"# memory: decode pipeline, {args.short:g} vs {args.long:g} minutes")
        for minutes in (args.short, args.long):
            video = make_video(root / f"m{minutes:g}.mp4", minutes * 60)
            result = subprocess_case("decode", video, 0, root)
            print(json.dumps({"minutes": minutes, **result}))
            video.unlink()


if __name__ == "__main__":
    main()
