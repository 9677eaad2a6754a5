"""ChunkStore: storing chunks, progress, assembly (a real directory, a moved clock)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from serve_app.errors import (
    Conflict,
    Gone,
    InvalidRequest,
    MediaTooLarge,
    NotFound,
    RateLimited,
    UnsupportedMedia,
)
from tests.support.uploads import JPEG_HEAD, finish, leftovers
from tests.support.uploads import put_part as put


def test_chunks_in_any_order_assemble_in_order(store, tmp_path):
    parts = [JPEG_HEAD, b"B" * 100, b"C" * 50]
    assert put(store, tmp_path, 2, 3, parts[2]).state.received == (2,)
    assert put(store, tmp_path, 0, 3, parts[0]).state.received == (0, 2)
    receipt = put(store, tmp_path, 1, 3, parts[1])
    assert receipt.state.complete and receipt.state.received_bytes == sum(map(len, parts))
    claim = store.claim(1, "u1")
    assert claim is not None
    assembled = store.assemble(claim, tmp_path / "spool")
    assert assembled.file.path.read_bytes() == b"".join(parts)
    assert assembled.sha256 == hashlib.sha256(b"".join(parts)).hexdigest()
    assert assembled.chunk_sha256[1] == hashlib.sha256(parts[1]).hexdigest()
    store.complete(claim, assembled, {"result": "ok"})
    assembled.file.discard()
    state = store.status(1, "u1")
    assert state.phase == "done" and state.result == {"result": "ok"}
    assert leftovers(store.root) == sorted(
        str(p.relative_to(store.root)) for p in store.root.rglob("*.json")
    )


def test_after_completion_same_bytes_replay_and_other_bytes_conflict(store, tmp_path):
    put(store, tmp_path, 0, 2, JPEG_HEAD)
    put(store, tmp_path, 1, 2, b"tail")
    finish(store, tmp_path)
    assert put(store, tmp_path, 1, 2, b"tail").replay == {"result": "ok"}
    with pytest.raises(Conflict, match="already complete"):
        put(store, tmp_path, 1, 2, b"other")


def test_duplicate_is_harmless_and_conflict_is_refused(store, tmp_path):
    put(store, tmp_path, 0, 2, JPEG_HEAD)
    assert put(store, tmp_path, 0, 2, JPEG_HEAD).state.received == (0,)
    with pytest.raises(Conflict, match="different bytes"):
        put(store, tmp_path, 0, 2, JPEG_HEAD + b"x")
    with pytest.raises(Conflict, match="total_chunks"):
        put(store, tmp_path, 1, 3, b"x")
    with pytest.raises(Conflict, match="filename"):
        put(store, tmp_path, 1, 2, b"x", filename="b.jpg")


@pytest.mark.parametrize(("n", "total"), [(2, 2), (-1, 2), (0, 0), (0, 17)])
def test_out_of_range_numbers(store, tmp_path, n, total):
    with pytest.raises(InvalidRequest):
        put(store, tmp_path, n, total, b"x")
    assert leftovers(store.root) == []


def test_checksum_mismatch_and_empty_chunk_store_nothing(store, tmp_path):
    with pytest.raises(InvalidRequest, match="chunk_sha256"):
        put(store, tmp_path, 0, 2, JPEG_HEAD, sha="0" * 64)
    with pytest.raises(InvalidRequest, match="empty"):
        put(store, tmp_path, 1, 2, b"")
    assert leftovers(store.root) == []
    ok = put(store, tmp_path, 0, 2, JPEG_HEAD, sha=hashlib.sha256(JPEG_HEAD).hexdigest().upper())
    assert ok.state.received == (0,)


def test_wrong_type_at_chunk_zero_discards_the_upload(store, tmp_path):
    put(store, tmp_path, 1, 2, b"x" * 10)
    with pytest.raises(UnsupportedMedia):
        put(store, tmp_path, 0, 2, b"hello, plain text")
    assert leftovers(store.root) == []
    with pytest.raises(Gone, match="rejected"):
        put(store, tmp_path, 1, 2, b"x" * 10)


def test_rejected_uploads_leave_no_more_tombstones_than_the_open_uploads_limit(store, tmp_path):
    """Issue 15 item 11a: rejections cost nothing on disk beyond the per-user limit (2)."""
    for i in range(6):  # each a new upload refused at its first chunk: no quota spent
        with pytest.raises(UnsupportedMedia):
            put(store, tmp_path, 0, 2, b"hello, plain text", upload_id=f"bad{i}")
    for i in range(3):  # each opened (counted), then rejected (no longer counted)
        put(store, tmp_path, 1, 2, b"x" * 10, upload_id=f"opened{i}")
        with pytest.raises(UnsupportedMedia):
            put(store, tmp_path, 0, 2, b"hello, plain text", upload_id=f"opened{i}")
    user_dir = next(p for p in store.root.iterdir() if not p.name.startswith("."))
    assert len(list(user_dir.glob("*.gone"))) <= store.settings.max_open_uploads
    assert leftovers(store.root) == []
    with pytest.raises(Gone, match="rejected"):  # the latest rejection still answers 410
        put(store, tmp_path, 1, 2, b"x" * 10, upload_id="opened2")
    put(store, tmp_path, 0, 2, JPEG_HEAD, upload_id="good")  # and the user may upload


def test_size_cap_follows_the_type_of_chunk_zero(store, tmp_path):
    put(store, tmp_path, 0, 4, JPEG_HEAD + b"\0" * 400)  # an image: 1000 bytes at most
    put(store, tmp_path, 1, 4, b"\0" * 400)
    with pytest.raises(MediaTooLarge, match="image file limit of 1000"):
        put(store, tmp_path, 2, 4, b"\0" * 400)
    assert leftovers(store.root) == []
    with pytest.raises(Gone):
        store.status(1, "u1")


def test_uploads_are_per_user_and_limited(store, tmp_path):
    put(store, tmp_path, 0, 2, JPEG_HEAD, user_id=1, upload_id="a")
    put(store, tmp_path, 0, 3, JPEG_HEAD, user_id=2, upload_id="a")
    assert store.status(1, "a").total_chunks == 2
    assert store.status(2, "a").total_chunks == 3
    with pytest.raises(NotFound):
        store.status(3, "a")
    put(store, tmp_path, 0, 2, JPEG_HEAD, user_id=1, upload_id="b")
    with pytest.raises(RateLimited):
        put(store, tmp_path, 0, 2, JPEG_HEAD, user_id=1, upload_id="c")


def test_concurrent_chunks_of_one_upload(store, tmp_path):
    data = [JPEG_HEAD] + [bytes([i]) * 20 for i in range(1, 12)]

    def send(n: int) -> tuple[int, ...]:
        return put(store, tmp_path, n, len(data), data[n]).state.received

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(send, range(len(data))))
    state = store.status(1, "u1")
    assert state.complete and state.received_bytes == sum(map(len, data))
