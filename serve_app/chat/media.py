"""Image and video URLs of a chat request → checked media, before anything is charged.

``data:`` URLs are decoded; ``http(s)`` URLs are fetched through the SSRF guard
(:mod:`serve_app.net`) with the size and time caps of ``chat.fetch``. Every file is
probed here (type, size, pixel and duration caps), so a bad input costs no credits;
decoding and sampling happen on the FrameExtractor replicas.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from serve_app.errors import MediaTooLarge, ParameterError
from serve_app.media.extract import MediaInfo, inspect_media
from serve_app.media.frames import MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.net.fetch import SafeHttp
from serve_app.net.netguard import UrlRefused
from serve_app.pipeline.protocol import MediaRef


@dataclass(frozen=True)
class MediaSource:
    """Where a request's media may come from, and how big they may be."""

    http: SafeHttp
    limits: MediaLimits
    spool_dir: Path
    #: Files up to this size travel inline through the object store, larger by path.
    inline_bytes: int


@dataclass(frozen=True)
class LoadedMedia:
    ref: MediaRef
    info: MediaInfo


def decode_data_url(url: str, param: str, max_bytes: int) -> bytes:
    """The bytes of a base64 ``data:`` URL.

    Raises:
        ParameterError: not base64, or malformed.
        MediaTooLarge: more than ``max_bytes``.
    """
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header.lower():
        raise ParameterError("data URLs must be base64-encoded (data:<type>;base64,...)", param)
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise MediaTooLarge(f"{param} is larger than the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ParameterError(f"{param} is not valid base64", param) from None


def read_url(url: str, param: str, source: MediaSource, max_bytes: int) -> bytes | Path:
    """A ``data:`` URL's bytes, or an ``http(s)`` URL fetched into a spool file.

    The caller deletes a returned path. Raises ``ParameterError`` for other schemes
    and for URLs the guard refuses; ``FetchFailed`` / ``MediaTooLarge`` from the fetch.
    """
    if url.startswith("data:"):
        return decode_data_url(url, param, max_bytes)
    if not url.lower().startswith(("http://", "https://")):
        raise ParameterError(f"{param} must be a data: or http(s):// URL", param)
    source.spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=source.spool_dir, prefix="chat-")
    path = Path(name)
    try:
        with open(fd, "wb") as out:
            source.http.fetch_to(url, out)
    except UrlRefused as exc:
        path.unlink(missing_ok=True)
        raise ParameterError(f"{param}: {exc.detail}", param) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if path.stat().st_size > max_bytes:
        path.unlink(missing_ok=True)
        raise MediaTooLarge(f"{param} is larger than the limit of {max_bytes} bytes")
    return path


def load_media(
    url: str, kind: MediaKind, param: str, source: MediaSource, cleanup: contextlib.ExitStack
) -> LoadedMedia:
    """Read and probe one image or video file given by URL (blocking).

    Raises:
        ParameterError: a bad URL, or an image where a video belongs (or back).
        UnsupportedMedia, MediaTooLarge, MediaRejected: the file is refused.
    """
    max_bytes = source.limits.max_bytes(kind.value)
    data = read_url(url, param, source, max_bytes)
    if isinstance(data, Path):
        cleanup.callback(data.unlink, missing_ok=True)
    info = inspect_media(data, source.limits)
    if info.kind is not kind:
        raise ParameterError(f"{param} is {info.kind.value}, not {kind.value}", param)
    if isinstance(data, Path) and info.size_bytes <= source.inline_bytes:
        data = data.read_bytes()
    elif isinstance(data, bytes) and len(data) > source.inline_bytes:
        data = _spool_bytes(data, source.spool_dir, cleanup)
    return LoadedMedia(data, info)


def load_frame(url: str, param: str, source: MediaSource) -> bytes:
    """One frame of a video given as images: its bytes (checked as an image later)."""
    max_bytes = source.limits.max_image_bytes
    data = read_url(url, param, source, max_bytes)
    if isinstance(data, Path):
        try:
            return data.read_bytes()
        finally:
            data.unlink(missing_ok=True)
    return data


def _spool_bytes(data: bytes, spool_dir: Path, cleanup: contextlib.ExitStack) -> Path:
    spool_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=spool_dir, prefix="chat-", delete=False) as f:
        f.write(data)
    path = Path(f.name)
    cleanup.callback(path.unlink, missing_ok=True)
    return path
