"""Generators for real media files used by tests (videos, images, hostile files).

Videos are written with PyAV. With ``pattern="counter"`` every frame carries its own
index as a 4x4 grid of large cells: the top-left cell is a red marker, the other 15 are
black/white bits of the index (most significant first, row-major). The cells survive
compression and heavy downscaling, so :func:`decode_index` recovers the index from any
sampled, resized frame — and only when the frame is upright.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.audio.stream
import av.container
import av.video.stream
import numpy as np
from PIL import Image

#: PyAV encoder used for each short codec name.
ENCODERS: dict[str, tuple[str, ...]] = {
    "h264": ("libx264", "h264"),
    "hevc": ("libx265", "hevc"),
    "vp9": ("libvpx-vp9",),
    "av1": ("libsvtav1", "libaom-av1", "librav1e"),
    "mpeg4": ("mpeg4",),
}

_ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    # Always B-frames, with a B-pyramid: reordering and non-reference frames, as cameras.
    "libx264": {"preset": "veryfast", "x264-params": "b-adapt=0:bframes=3:b-pyramid=normal"},
    "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"},
    "libsvtav1": {"preset": "8"},
    "libaom-av1": {"cpu-used": "8", "usage": "realtime"},
}

_GRID = 4
_BITS = _GRID * _GRID - 1
MAX_COUNTER = 2**_BITS - 1

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 logs every setting at its default level


def encoder_for(codec: str) -> str | None:
    """Name of an available PyAV encoder for ``codec``, or None."""
    for name in ENCODERS.get(codec, (codec,)):
        try:
            av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):  # pragma: no cover - build dependent
            continue
        return name
    return None


def counter_frame(index: int, width: int, height: int) -> np.ndarray:
    """RGB frame whose 4x4 cell grid encodes ``index`` (see module docstring)."""
    if not 0 <= index <= MAX_COUNTER:
        raise ValueError(f"index must be in [0, {MAX_COUNTER}]")
    img = np.empty((height, width, 3), np.uint8)
    for cell in range(_GRID * _GRID):
        r, c = divmod(cell, _GRID)
        ys = slice(r * height // _GRID, (r + 1) * height // _GRID)
        xs = slice(c * width // _GRID, (c + 1) * width // _GRID)
        if cell == 0:
            img[ys, xs] = (220, 20, 20)
        else:
            bit = (index >> (_BITS - cell)) & 1
            img[ys, xs] = 235 if bit else 16
    return img


def decode_index(frame: np.ndarray) -> int:
    """Index drawn by :func:`counter_frame`, or -1 when the marker is not top-left."""
    h, w = frame.shape[:2]
    value = 0
    for cell in range(_GRID * _GRID):
        r, c = divmod(cell, _GRID)
        y0, y1 = r * h // _GRID, (r + 1) * h // _GRID
        x0, x1 = c * w // _GRID, (c + 1) * w // _GRID
        dy, dx = max(1, (y1 - y0) // 4), max(1, (x1 - x0) // 4)
        patch = frame[y0 + dy : y1 - dy, x0 + dx : x1 - dx].reshape(-1, 3).astype(np.float32)
        red, green, _ = patch.mean(axis=0)
        if cell == 0:
            if not (red > 150 and green < 100):
                return -1
            continue
        value = (value << 1) | int(patch.mean() > 128)
    return value


def vfr_timestamps_ms(frames: int, fps: float = 30) -> list[int]:
    """Irregular, strictly increasing presentation times (ms) used for VFR clips."""
    base = 1000 / fps
    gaps = (1.0, 1.0, 3.0, 0.5, 1.5, 2.0)
    out, t = [], 0.0
    for i in range(frames):
        out.append(round(t))
        t += base * gaps[i % len(gaps)]
    return out


def _photo_frame(i: int, width: int, height: int, src: np.ndarray) -> np.ndarray:
    import cv2

    scale = max(width / src.shape[1], height / src.shape[0]) * 1.25
    big = cv2.resize(src, (round(src.shape[1] * scale), round(src.shape[0] * scale)))
    max_dx = big.shape[1] - width
    dx = (i * 2) % (max_dx + 1) if max_dx > 0 else 0
    return np.ascontiguousarray(big[:height, dx : dx + width])


def make_video(
    path: str | Path,
    *,
    codec: str = "h264",
    container: str = "mp4",
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    frames: int = 60,
    vfr: bool = False,
    rotation: int = 0,
    pattern: str = "counter",
    gop: int | None = None,
    audio: bool = False,
    faststart: bool = False,
    live: bool = False,
) -> Path:
    """Write a real video file and return its path.

    Args:
        codec: ``h264``, ``hevc``, ``vp9``, ``av1`` or ``mpeg4``.
        container: ``mp4``, ``mov``, ``mkv`` or ``webm`` (used as the muxer name).
        vfr: use :func:`vfr_timestamps_ms` instead of a constant frame rate.
        rotation: clockwise display rotation stored in the container (0/90/180/270);
            the pixels are stored unrotated, as phones do.
        pattern: ``counter`` (frame index grid) or ``photo`` (pan over astronaut.png).
        gop: keyframe interval (encoder default when None).
        audio: add a short AAC/Opus audio track.
        faststart: (mp4/mov) put the index first so a truncated file still opens.
        live: (mkv/webm) write through a non-seekable sink, as a browser's
            MediaRecorder does: no duration and no index in the file.
    """
    path = Path(path)
    encoder = encoder_for(codec)
    if encoder is None:
        raise RuntimeError(f"no encoder for {codec} in this PyAV build")
    fmt = {"mkv": "matroska"}.get(container, container)
    mux_options = {"movflags": "+faststart"} if faststart and fmt in ("mp4", "mov") else {}
    photo = np.asarray(Image.open(real_photo())) if pattern == "photo" else None
    sink: str | _NonSeekableSink = _NonSeekableSink(path) if live else str(path)
    with av.open(sink, "w", format=fmt, options=mux_options) as out:
        options = dict(_ENCODER_OPTIONS.get(encoder, {}))
        stream = cast(av.video.stream.VideoStream, out.add_stream(encoder, fps, options=options))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        time_base = Fraction(1, 1000) if vfr else Fraction(1, fps)
        stream.codec_context.time_base = time_base
        if gop:
            stream.codec_context.gop_size = gop
        if rotation:
            stream.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees
        sound = _audio_stream(out, fmt) if audio else None
        pts_list: Sequence[int] = vfr_timestamps_ms(frames, fps) if vfr else range(frames)
        for i, pts in enumerate(pts_list):
            rgb = (
                counter_frame(i, width, height)
                if photo is None
                else _photo_frame(i, width, height, photo)
            )
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if sound is not None:
            _mux_tone(out, sound, seconds=frames / fps)
    if isinstance(sink, _NonSeekableSink):
        sink.close()
    return path


class _NonSeekableSink(io.RawIOBase):
    """Write-only file object that refuses to seek."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed with the sink

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def _audio_stream(out: av.container.OutputContainer, fmt: str) -> av.audio.stream.AudioStream:
    return out.add_stream("libopus" if fmt == "webm" else "aac", rate=48000)


def _mux_tone(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    samples = int(48000 * seconds)
    tone = (0.1 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 48000)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(tone[None, :], format="flt", layout="mono")
    frame.rate, frame.pts = 48000, 0
    out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def loop_video(src: str | Path, dst: str | Path, copies: int) -> Path:
    """``src``'s video played ``copies`` times, remuxed without re-encoding (fast).

    A long video for decode-heavy tests without the cost of encoding every frame:
    each copy starts with ``src``'s keyframe, so decoding the result costs ``copies``
    times decoding ``src``.
    """
    with av.open(str(src)) as source, av.open(str(dst), "w", format="mp4") as out:
        stream = source.streams.video[0]
        target = out.add_stream_from_template(stream)
        packets = [p for p in source.demux(stream) if p.size > 0]
        times = [(p.pts or 0, p.dts or 0) for p in packets]
        span = max(pts for pts, _ in times) + (packets[-1].duration or 1)
        for copy in range(copies):
            for packet, (pts, dts) in zip(packets, times, strict=True):
                packet.stream = target
                packet.pts, packet.dts = pts + copy * span, dts + copy * span
                out.mux(packet)
    return Path(dst)


def make_audio_only(path: str | Path, container: str = "mkv", seconds: float = 1.0) -> Path:
    """A container with one audio stream and no video."""
    path = Path(path)
    fmt = {"mkv": "matroska"}.get(container, container)
    with av.open(str(path), "w", format=fmt) as out:
        _mux_tone(out, _audio_stream(out, fmt), seconds)
    return path


def make_image(
    path: str | Path,
    fmt: str = "jpeg",
    width: int = 64,
    height: int = 48,
    *,
    orientation: int | None = None,
    mode: str = "RGB",
) -> Path:
    """Write an image whose top-left quadrant is red (to check orientation) and return it.

    Args:
        orientation: EXIF orientation tag to store (e.g. 6 = display rotated 90° CW).
        mode: Pillow mode to save in (``RGB``, ``RGBA``, ``L``, ``P``...).
    """
    path = Path(path)
    arr = np.full((height, width, 3), 40, np.uint8)
    arr[: height // 2, : width // 2] = (220, 20, 20)
    arr[height // 2 :, width // 2 :] = (20, 20, 220)
    img = Image.fromarray(arr).convert(mode)
    kwargs: dict[str, object] = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    img.save(path, format=fmt.upper(), **kwargs)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png_header_bomb(path: str | Path, width: int = 50000, height: int = 50000) -> Path:
    """A tiny, structurally valid PNG whose header claims ``width`` x ``height`` pixels."""
    path = Path(path)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return path


def truncate_file(src: str | Path, dst: str | Path, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``src`` to ``dst``."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def real_photo(name: str = "astronaut") -> Path:
    """Path of a real photo shipped in scikit-image's wheel (``skimage/data``)."""
    import skimage

    path = Path(skimage.__file__).parent / "data" / f"{name}.png"
    if not path.is_file():
        raise FileNotFoundError(f"scikit-image ships no {name}.png")
    return path
