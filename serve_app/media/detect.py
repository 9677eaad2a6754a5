"""Media type detection by magic bytes, extension checks, and source helpers.

The type of an upload is decided by its first bytes only; the client's file name and
content type are never trusted. The file name's extension is then checked against the
detected type so that, say, PNG bytes named ``.mp4`` are refused.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

from serve_app.errors import UnsupportedMedia
from serve_app.media.frames import MediaKind

#: A media source: a file on disk or the whole content in memory.
MediaSource = Path | str | bytes

#: How many leading bytes :func:`detect_media_type` looks at (it needs far fewer).
HEAD_BYTES = 4096

#: ISO base media (MP4/QuickTime) major brands accepted as video.
_MP4_BRANDS = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"iso9",
        b"mp41", b"mp42", b"avc1", b"hvc1", b"hev1", b"av01", b"dash", b"MSNV",
        b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"XAVC", b"f4v ", b"NDAS", b"FACE",
        b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"3g2b", b"3g2c", b"CAEP", b"crx ",
    }
)  # fmt: skip
_MOV_BRANDS = frozenset({b"qt  "})
#: Brands of ISO-BMFF files that are not videos we accept (still images, audio).
_NOT_VIDEO_BRANDS = {
    b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"mif1": "HEIF",
    b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF", b"M4A ": "M4A audio",
    b"M4B ": "M4B audio", b"M4P ": "M4P audio", b"F4A ": "F4A audio",
}  # fmt: skip
#: Old QuickTime files may start with one of these atoms instead of ``ftyp``.
_QT_LEADING_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})

_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "png": (".png",),
    "webp": (".webp",),
    # MP4 and QuickTime are the same box format; files are routinely named either way.
    "mp4": (".mp4", ".m4v", ".mov"),
    "mov": (".mov", ".qt", ".mp4", ".m4v"),
    "matroska": (".mkv", ".webm"),
    "webm": (".webm", ".mkv"),
}

#: FFmpeg demuxer to force for each detected video format (no probing of other formats).
DEMUXERS: dict[str, str] = {"mp4": "mp4", "mov": "mov", "matroska": "matroska", "webm": "matroska"}


@dataclass(frozen=True)
class DetectedType:
    """What the magic bytes say a file is.

    Attributes:
        kind: image or video.
        format: ``jpeg``, ``png``, ``webp``, ``mp4``, ``mov``, ``matroska`` or ``webm``.
        extensions: file name extensions (lower case, with dot) allowed for it.
    """

    kind: MediaKind
    format: str
    extensions: tuple[str, ...]


def _detected(kind: MediaKind, fmt: str) -> DetectedType:
    return DetectedType(kind=kind, format=fmt, extensions=_EXTENSIONS[fmt])


def _ebml_doctype(head: bytes) -> str | None:
    """DocType string of an EBML header (``webm``/``matroska``), if present in ``head``."""
    pos = head.find(b"\x42\x82", 4, 128)
    if pos < 0 or pos + 3 > len(head):
        return None
    size_byte = head[pos + 2]
    if not size_byte & 0x80:  # only 1-byte sizes occur in practice for DocType
        return None
    size = size_byte & 0x7F
    return head[pos + 3 : pos + 3 + size].rstrip(b"\x00").decode("ascii", "replace")


def detect_media_type(head: bytes) -> DetectedType:
    """Identify a supported image or video format from its first bytes.

    Args:
        head: the first bytes of the file (:data:`HEAD_BYTES` is plenty).

    Raises:
        UnsupportedMedia: empty input, or not a JPEG/PNG/WebP image or MP4/MOV/
            Matroska/WebM video.
    """
    if not head:
        raise UnsupportedMedia("empty file")
    if head.startswith(b"\xff\xd8\xff"):
        return _detected(MediaKind.IMAGE, "jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _detected(MediaKind.IMAGE, "png")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _detected(MediaKind.IMAGE, "webp")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        doctype = _ebml_doctype(head)
        if doctype == "webm":
            return _detected(MediaKind.VIDEO, "webm")
        if doctype in ("matroska", None):
            return _detected(MediaKind.VIDEO, "matroska")
        raise UnsupportedMedia("unsupported EBML document type")
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand in _MOV_BRANDS:
            return _detected(MediaKind.VIDEO, "mov")
        if brand in _MP4_BRANDS:
            return _detected(MediaKind.VIDEO, "mp4")
        if brand in _NOT_VIDEO_BRANDS:
            raise UnsupportedMedia(f"{_NOT_VIDEO_BRANDS[brand]} files are not supported")
        raise UnsupportedMedia("unsupported MP4 brand")
    if box in _QT_LEADING_ATOMS and int.from_bytes(head[:4], "big") not in range(2, 8):
        return _detected(MediaKind.VIDEO, "mov")
    raise UnsupportedMedia(
        "unsupported file type: expected a JPEG, PNG or WebP image or an MP4, MOV, "
        "MKV or WebM video"
    )


def read_head(source: MediaSource, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of ``source``."""
    if isinstance(source, bytes):
        return source[:n]
    with open(source, "rb") as f:
        return f.read(n)


def detect_file(path: str | Path) -> DetectedType:
    """:func:`detect_media_type` on the first bytes of a file."""
    return detect_media_type(read_head(path))


def source_size(source: MediaSource) -> int:
    """Size of ``source`` in bytes."""
    if isinstance(source, bytes):
        return len(source)
    return Path(source).stat().st_size


@contextmanager
def open_source(source: MediaSource) -> Iterator[BinaryIO]:
    """A readable, seekable binary file object over ``source``."""
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    else:
        with open(source, "rb") as f:
            yield f


def check_extension(filename: str | None, detected: DetectedType) -> None:
    """Refuse a file name whose extension does not fit the detected content.

    A missing name or a name without an extension is accepted: the content decides.

    Raises:
        UnsupportedMedia: the extension is not allowed for ``detected``.
    """
    if not filename:
        return
    suffix = PurePath(filename.replace("\\", "/")).suffix.lower()
    if not suffix or suffix in detected.extensions:
        return
    shown = suffix if len(suffix) <= 12 and suffix[1:].isalnum() else "this extension"
    raise UnsupportedMedia(
        f"file extension {shown} does not match the content ({detected.format}); "
        f"expected one of {', '.join(detected.extensions)}"
    )
