import io

import pytest

from serve_app.errors import MediaRejected, MediaTooLarge
from serve_app.storage.spool import spool_upload, spooled


class AsyncBytes:
    """An async reader over bytes, like Starlette's UploadFile."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)
        self.reads = 0

    async def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return self._buf.read(size)


async def test_spool_writes_all_bytes_under_a_server_generated_name(tmp_path):
    data = b"x" * (3 * 1024 * 1024 + 5)
    spooled_file = await spool_upload(AsyncBytes(data), tmp_path, "../../etc/passwd", 10**8)
    assert spooled_file.path.parent == tmp_path
    assert "passwd" not in spooled_file.path.name
    assert spooled_file.path.read_bytes() == data
    assert spooled_file.size == len(data)
    assert spooled_file.filename == "../../etc/passwd"


async def test_spool_stops_at_the_limit_and_leaves_nothing(tmp_path):
    source = AsyncBytes(b"y" * (5 * 1024 * 1024))
    with pytest.raises(MediaTooLarge):
        await spool_upload(source, tmp_path, "big.mp4", 2 * 1024 * 1024)
    assert list(tmp_path.iterdir()) == []
    # It stopped reading soon after the limit, not at the end of the body.
    assert source.reads <= 4


async def test_empty_upload_is_rejected(tmp_path):
    with pytest.raises(MediaRejected, match="empty"):
        await spool_upload(AsyncBytes(b""), tmp_path, "a.jpg", 100)
    assert list(tmp_path.iterdir()) == []


async def test_spooled_context_removes_the_file(tmp_path):
    async with spooled(AsyncBytes(b"abc"), tmp_path, "a.jpg", 100) as f:
        assert f.path.exists()
        assert f.read_head(2) == b"ab"
    assert not f.path.exists()


class WithFile:
    """Like Starlette's UploadFile: an async wrapper around a synchronous file."""

    def __init__(self, data: bytes) -> None:
        self.file = io.BytesIO(data)

    async def read(self, size: int = -1) -> bytes:  # pragma: no cover - not used
        raise AssertionError("the synchronous file should be copied directly")


async def test_a_synchronous_file_is_copied_in_one_thread_with_the_same_checks(tmp_path):
    data = b"z" * (200 * 1024 + 3)
    spooled_file = await spool_upload(WithFile(data), tmp_path, "a.mp4", 10**6)
    assert spooled_file.path.read_bytes() == data and spooled_file.size == len(data)
    with pytest.raises(MediaTooLarge):
        await spool_upload(WithFile(data), tmp_path / "x", "a.mp4", 100 * 1024)
    with pytest.raises(MediaRejected, match="empty"):
        await spool_upload(WithFile(b""), tmp_path / "x", "a.mp4", 100)
    assert list((tmp_path / "x").iterdir()) == []
