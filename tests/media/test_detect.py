"""Magic-byte detection and extension checks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from serve_app.errors import UnsupportedMedia
from serve_app.media.detect import (
    check_extension,
    detect_file,
    detect_media_type,
    read_head,
    source_size,
)
from serve_app.media.frames import MediaKind
from tests.media.conftest import Clips
from tests.support.media_files import make_image


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_detects_real_images(tmp_path: Path, fmt: str) -> None:
    path = make_image(tmp_path / f"x.{fmt}", fmt)
    detected = detect_file(path)
    assert detected.kind is MediaKind.IMAGE
    assert detected.format == fmt
    assert path.suffix in detected.extensions or fmt == "jpeg"


@pytest.mark.parametrize(
    ("codec", "container", "expected"),
    [
        ("h264", "mp4", "mp4"),
        ("h264", "mov", "mov"),
        ("h264", "mkv", "matroska"),
        ("vp9", "webm", "webm"),
    ],
)
def test_detects_real_videos(clips: Clips, codec: str, container: str, expected: str) -> None:
    detected = detect_file(clips.get(codec=codec, container=container))
    assert detected.kind is MediaKind.VIDEO
    assert detected.format == expected


@pytest.mark.parametrize(
    ("brand", "fmt"),
    [
        (b"isom", "mp4"),
        (b"mp41", "mp4"),
        (b"mp42", "mp4"),
        (b"avc1", "mp4"),
        (b"M4V ", "mp4"),
        (b"qt  ", "mov"),
        (b"3gp5", "mp4"),
    ],
)
def test_iso_bmff_brands(brand: bytes, fmt: str) -> None:
    head = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x02\x00isomiso2"
    assert detect_media_type(head).format == fmt


@pytest.mark.parametrize(
    ("brand", "name"), [(b"heic", "HEIC"), (b"avif", "AVIF"), (b"M4A ", "M4A")]
)
def test_still_image_and_audio_brands_are_refused(brand: bytes, name: str) -> None:
    with pytest.raises(UnsupportedMedia, match=name):
        detect_media_type(b"\x00\x00\x00\x18ftyp" + brand + b"\x00" * 12)


def test_unknown_brand_is_refused() -> None:
    with pytest.raises(UnsupportedMedia, match="brand"):
        detect_media_type(b"\x00\x00\x00\x18ftypzzzz" + b"\x00" * 12)


def test_old_quicktime_without_ftyp() -> None:
    assert detect_media_type(b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat").format == "mov"


def test_ebml_without_doctype_is_matroska() -> None:
    assert detect_media_type(b"\x1a\x45\xdf\xa3\x80" + b"\x00" * 40).format == "matroska"


def test_empty_input() -> None:
    with pytest.raises(UnsupportedMedia, match="empty file"):
        detect_media_type(b"")


@pytest.mark.parametrize(
    "head",
    [
        b"hello, this is plain text\n",
        b"<?xml version='1.0'?><svg/>",
        b"GIF89a\x01\x00\x01\x00",
        b"%PDF-1.7",
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
        b"\x00\x00\x00\x04free",  # a size too small to be a real QuickTime atom
        random.Random(0).randbytes(64),
    ],
)
def test_other_content_is_refused(head: bytes) -> None:
    if head[:3] == b"\xff\xd8\xff":  # pragma: no cover - random JPEG magic
        pytest.skip("random bytes happen to look like a JPEG")
    with pytest.raises(UnsupportedMedia):
        detect_media_type(head)


def test_png_bytes_named_mp4_are_refused(tmp_path: Path) -> None:
    detected = detect_file(make_image(tmp_path / "x.png", "png"))
    with pytest.raises(UnsupportedMedia, match=r"\.mp4"):
        check_extension("holiday.mp4", detected)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.JPG", "jpeg"),
        ("a.jpeg", "jpeg"),
        ("dir/a.png", "png"),
        ("C:\\Users\\x\\a.webp", "webp"),
        ("clip.mov", "mp4"),
        ("clip.mp4", "mov"),
        ("clip.mkv", "webm"),
        ("clip.webm", "matroska"),
        ("no_extension", "png"),
        (None, "png"),
        ("", "png"),
    ],
)
def test_compatible_extensions_are_accepted(name: str | None, fmt: str) -> None:
    kind = MediaKind.IMAGE if fmt in ("jpeg", "png", "webp") else MediaKind.VIDEO
    heads = {
        "jpeg": b"\xff\xd8\xff\xe0",
        "png": b"\x89PNG\r\n\x1a\n",
        "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        "mp4": b"\x00\x00\x00\x18ftypisom" + b"\x00" * 8,
        "mov": b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 8,
        "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
        "matroska": b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska",
    }
    detected = detect_media_type(heads[fmt])
    assert (detected.kind, detected.format) == (kind, fmt)
    check_extension(name, detected)


@pytest.mark.parametrize("name", ["a.txt", "a.jpg.exe", "a.gif", "a.png\x00.sh"])
def test_incompatible_extensions_are_refused(name: str) -> None:
    detected = detect_media_type(b"\xff\xd8\xff\xe0")
    with pytest.raises(UnsupportedMedia) as info:
        check_extension(name, detected)
    assert "\x00" not in info.value.detail


def test_source_helpers_accept_paths_and_bytes(tmp_path: Path) -> None:
    path = make_image(tmp_path / "x.png", "png")
    data = path.read_bytes()
    assert read_head(path, 8) == read_head(data, 8) == data[:8]
    assert source_size(path) == source_size(str(path)) == source_size(data) == len(data)
