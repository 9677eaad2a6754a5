"""Large test videos for the memory benchmarks, made quickly and cached.

- :func:`testsrc_video`: N minutes of 1080p30 H.264 (ffmpeg's ``testsrc2`` pattern,
  through PyAV's libavfilter, so no ffmpeg binary is needed). One minute is encoded
  (libx264 ultrafast, 4 Mbit/s, a keyframe every second) and copied N times into one
  file without re-encoding, so a 10-minute file takes about as long as a 1-minute
  one (~10 s) and is exactly 10 times its size. Cached in ``.bench-cache/``.
- :func:`noise_video`: ~N MB of 720p noise at 100 Mbit/s (noise defeats
  compression), for the upload benchmark of ``scripts/bench_upload_memory.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

MB = 1_000_000
CACHE_DIR = Path(__file__).resolve().parents[2] / ".bench-cache"
FPS = 30


def testsrc_name(minutes: int, width: int, height: int, bitrate_mbit: int) -> str:
    """File name of a cached clip; it names every parameter, so a change misses the cache."""
    return f"testsrc2-{width}x{height}-{FPS}fps-{minutes}min-{bitrate_mbit}M-gop{FPS}.mp4"


def testsrc_video(
    minutes: int,
    width: int = 1920,
    height: int = 1080,
    bitrate_mbit: int = 4,
    cache_dir: Path = CACHE_DIR,
) -> Path:
    """``minutes`` of H.264 ``testsrc2``, made on first use and cached in ``cache_dir``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / testsrc_name(minutes, width, height, bitrate_mbit)
    if path.exists():
        return path
    one = cache_dir / testsrc_name(1, width, height, bitrate_mbit)
    if not one.exists():
        _encode_testsrc(one, 60, width, height, bitrate_mbit)
    if minutes > 1:
        _repeat(one, path, minutes)
    return path


def _encode_testsrc(path: Path, seconds: int, width: int, height: int, bitrate_mbit: int) -> None:
    import av
    import av.filter
    from av.video.frame import PictureType

    graph = av.filter.Graph()
    source = graph.add("testsrc2", f"size={width}x{height}:rate={FPS}:duration={seconds}")
    convert = graph.add("format", "pix_fmts=yuv420p")
    sink = graph.add("buffersink")
    source.link_to(convert)
    convert.link_to(sink)
    graph.configure()
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as out:
        # A keyframe exactly every second (no scene-cut keyframes): closed GOPs that
        # can be copied end to end.
        options = {"preset": "ultrafast", "g": str(FPS), "keyint_min": str(FPS),
                   "sc_threshold": "0"}  # fmt: skip
        stream = out.add_stream("libx264", FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bitrate_mbit * MB
        stream.codec_context.time_base = Fraction(1, FPS)
        index = 0
        while True:
            try:
                frame = sink.pull()
            except av.error.EOFError:
                break
            assert isinstance(frame, av.VideoFrame)
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            # Source filters mark every frame as an I-frame, which libx264 would obey.
            frame.pict_type = PictureType.NONE
            index += 1
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    os.replace(partial, path)


def _repeat(source: Path, path: Path, times: int) -> None:
    """``source`` played ``times`` times in a row: its packets copied, timestamps shifted."""
    import av

    partial = path.with_suffix(".partial.mp4")
    with av.open(str(source)) as src, av.open(str(partial), "w") as out:
        in_stream = src.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        packets = [p for p in src.demux(in_stream) if p.size]
        first = min(p.pts or 0 for p in packets)
        span = max(p.pts or 0 for p in packets) + (packets[-1].duration or 1) - first
        for n in range(times):
            for p in packets:
                copy = av.Packet(bytes(p))
                copy.pts = (p.pts or 0) + n * span
                copy.dts = (p.dts or 0) + n * span
                copy.duration = p.duration
                copy.is_keyframe = p.is_keyframe
                copy.time_base = p.time_base
                copy.stream = out_stream
                out.mux(copy)
    os.replace(partial, path)


def noise_video(path: Path, size_mb: int) -> str:
    """A 1280x720 noise video of about ``size_mb`` MB; returns how it was made."""
    bitrate = 100  # Mbit/s: 12.5 MB per second of video
    seconds = max(2, round(size_mb * 8 / bitrate))
    if shutil.which("ffmpeg"):
        subprocess.run(
            ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=1280x720:r=30",
             "-vf", "noise=alls=80:allf=t+u", "-t", str(seconds), "-c:v", "libx264",
             "-preset", "ultrafast", "-b:v", f"{bitrate}M", "-maxrate", f"{bitrate}M",
             "-bufsize", f"{2 * bitrate}M", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
        return f"ffmpeg: {seconds} s of 1280x720 noise, libx264 ultrafast ~{bitrate} Mbit/s"
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", 30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.bit_rate = bitrate * MB
        stream.codec_context.time_base = Fraction(1, 30)
        for i in range(seconds * 30):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8), format="rgb24"
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return f"PyAV: {seconds} s of 1280x720 noise, libx264 ultrafast ~{bitrate} Mbit/s"
