"""Admin file_path resolution and opening, including races a check alone would miss."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from serve_app.errors import (
    InvalidRequest,
    MediaRejected,
    MediaTooLarge,
    NotFound,
    PermissionDenied,
    UnsupportedMedia,
)
from serve_app.media.limits import MediaLimits
from serve_app.uploads.server_paths import copy_server_file, open_under, resolve_allowed

JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 100
LIMITS = MediaLimits(max_image_bytes=1000, max_video_bytes=2000)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "d").mkdir(parents=True)
    (base / "d" / "a.jpg").write_bytes(JPEG)
    (tmp_path / "outside.jpg").write_bytes(JPEG)
    return base


def test_resolves_then_checks_containment(root, tmp_path):
    assert resolve_allowed(f"{root}/d/../d/a.jpg", [root]) == (root, PurePosixPath("d/a.jpg"))
    with pytest.raises(PermissionDenied, match="outside"):
        resolve_allowed(f"{root}/../outside.jpg", [root])
    (root / "link").symlink_to(tmp_path / "outside.jpg")
    with pytest.raises(PermissionDenied, match="outside"):
        resolve_allowed(f"{root}/link", [root])


def test_roots_are_resolved_too(root, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert resolve_allowed(f"{root}/d/a.jpg", [alias])[0] == root
    assert resolve_allowed(f"{alias}/d/a.jpg", [alias])[1] == PurePosixPath("d/a.jpg")


def test_missing_file_outside_is_indistinguishable_from_existing(root):
    with pytest.raises(PermissionDenied) as missing:
        resolve_allowed("/no/such/file.jpg", [root])
    with pytest.raises(PermissionDenied) as existing:
        resolve_allowed("/etc/hostname", [root])
    assert missing.value.detail == existing.value.detail


def test_no_roots_means_disabled():
    with pytest.raises(PermissionDenied, match="disabled"):
        resolve_allowed("/x.jpg", [])


def test_symlink_loop_is_400(root):
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises((InvalidRequest, PermissionDenied)):
        resolve_allowed(f"{root}/loop", [root])


def test_open_under_refuses_a_symlink_swapped_in_after_the_check(root, tmp_path):
    # As if "d" were replaced by a symlink between resolving and opening.
    (root / "swapped").symlink_to(tmp_path)
    with pytest.raises(PermissionDenied), open_under(root, PurePosixPath("swapped/outside.jpg")):
        pass
    (root / "last.jpg").symlink_to(tmp_path / "outside.jpg")
    with pytest.raises(PermissionDenied), open_under(root, PurePosixPath("last.jpg")):
        pass


def test_open_under_refuses_fifos_without_blocking(root):
    os.mkfifo(root / "fifo.jpg")
    with pytest.raises(InvalidRequest, match="FIFO"), open_under(root, PurePosixPath("fifo.jpg")):
        pass


def test_open_under_gives_a_descriptor_of_the_file(root):
    with open_under(root, PurePosixPath("d/a.jpg")) as fd:
        assert os.pread(fd, 4, 0) == JPEG[:4]
    with pytest.raises(NotFound), open_under(root, PurePosixPath("d/missing.jpg")):
        pass
    with pytest.raises(NotFound), open_under(root, PurePosixPath("d/a.jpg/x")):
        pass


def test_copy_server_file(root, tmp_path):
    spool = tmp_path / "spool"
    copied = copy_server_file(f"{root}/d/a.jpg", [root], LIMITS, spool)
    assert copied.path.parent == spool and copied.path.read_bytes() == JPEG
    assert copied.filename == "a.jpg" and copied.size == len(JPEG)
    copied.discard()
    (root / "big.jpg").write_bytes(JPEG + b"\0" * 1000)
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_bytes(b"hello")
    for name, error in (
        ("big.jpg", MediaTooLarge),
        ("empty.jpg", MediaRejected),
        ("text.jpg", UnsupportedMedia),
    ):
        with pytest.raises(error):
            copy_server_file(f"{root}/{name}", [root], LIMITS, spool)
    assert list(spool.iterdir()) == []
