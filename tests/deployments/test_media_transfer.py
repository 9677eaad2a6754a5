"""Media files shipped through Ray's object store and landed on the extractor's disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serve_app.deployments.media_transfer import landed, ship


def test_an_array_lands_as_a_spool_file_removed_afterwards(tmp_path: Path) -> None:
    data = np.frombuffer(b"\x00\x01video bytes", dtype=np.uint8)
    data.flags.writeable = False  # as it arrives from shared memory
    with landed(data, tmp_path / "spool") as source:
        assert isinstance(source, Path) and source.parent == tmp_path / "spool"
        assert source.read_bytes() == b"\x00\x01video bytes"
    assert list((tmp_path / "spool").iterdir()) == []


def test_bytes_and_paths_pass_through(tmp_path: Path) -> None:
    with landed(b"inline", tmp_path) as source:
        assert source == b"inline"
    with landed(tmp_path / "f", tmp_path) as source:
        assert source == tmp_path / "f"


@pytest.mark.ray
async def test_a_file_is_shipped_as_an_object_and_bytes_stay_inline(
    ray_serve: int, tmp_path: Path
) -> None:
    import ray

    assert await ship(b"inline") == b"inline"
    path = tmp_path / "clip.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    ref = await ship(path)
    assert isinstance(ref, ray.ObjectRef)
    path.unlink()  # the object holds its own copy
    arrived = ray.get(ref)
    assert arrived.dtype == np.uint8 and arrived.tobytes() == bytes(range(256)) * 1000
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert ray.get(await ship(empty)).size == 0
