"""UploadArea: claims, tombstones, expiry and cleanup (a real directory, a moved clock)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from serve_app.errors import Gone, NotFound
from serve_app.media.limits import MediaLimits
from serve_app.uploads.area import TRASH
from serve_app.uploads.chunks import ChunkStore
from serve_app.uploads.settings import UploadSettings
from tests.support.uploads import JPEG_HEAD, finish, leftovers
from tests.support.uploads import put_part as put


def test_one_claim_among_many(store, tmp_path):
    put(store, tmp_path, 0, 1, JPEG_HEAD)
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: store.claim(1, "u1"), range(8)))
    assert sum(c is not None for c in claims) == 1
    assert store.status(1, "u1").phase == "analysing"


def test_released_claim_can_be_taken_again(store, tmp_path):
    put(store, tmp_path, 0, 1, JPEG_HEAD)
    first = store.claim(1, "u1")
    assert first is not None and store.claim(1, "u1") is None
    store.release(first)
    assert store.claim(1, "u1") is not None


def test_stale_claim_is_taken_over_and_its_holder_cannot_release_the_new_one(
    store, tmp_path, clock
):
    put(store, tmp_path, 0, 1, JPEG_HEAD)
    dead = store.claim(1, "u1")
    assert dead is not None
    clock.now += 51
    fresh = store.claim(1, "u1")
    assert fresh is not None
    store.release(dead)
    assert store.status(1, "u1").phase == "analysing"
    store.release(fresh)
    assert store.status(1, "u1").phase == "receiving"


def test_expiry_gives_410_then_the_id_is_free_again(store, tmp_path, clock):
    put(store, tmp_path, 0, 2, JPEG_HEAD)
    clock.now += 101
    with pytest.raises(Gone, match="expired"):
        put(store, tmp_path, 1, 2, b"x")
    assert leftovers(store.root) == []
    clock.now += 101  # the tombstone expires too
    assert put(store, tmp_path, 0, 2, JPEG_HEAD).state.received == (0,)


def test_cleanup_spares_live_claims_and_removes_strays(store, tmp_path, clock):
    put(store, tmp_path, 0, 1, JPEG_HEAD, upload_id="claimed")
    put(store, tmp_path, 0, 2, JPEG_HEAD, upload_id="idle")
    assert store.claim(1, "claimed") is not None
    staging = store.staging_dir(1)
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "crashed.upload").write_bytes(b"x")
    (store.root / TRASH / "half-deleted").mkdir(parents=True)
    clock.now += 40
    assert store.cleanup() == 0
    clock.now += 70  # idle past the TTL; the claim is 110 s old (stale after 50)
    assert store.cleanup() == 2
    assert leftovers(store.root) == []
    assert list((store.root / TRASH).iterdir()) == []
    assert list(staging.iterdir()) == []
    clock.now += 101
    store.cleanup()
    assert not list(store.root.rglob("*.gone"))


def test_completed_uploads_are_removed_after_the_ttl(store, tmp_path, clock):
    put(store, tmp_path, 0, 1, JPEG_HEAD)
    finish(store, tmp_path)
    clock.now += 101
    store.cleanup()
    with pytest.raises(NotFound):
        store.status(1, "u1")


def test_a_new_store_sweeps_on_first_use(store):
    assert store.cleanup_due()
    assert not store.cleanup_due()


def test_a_dead_replicas_claim_is_taken_over_within_the_owner_lease(tmp_path, clock):
    """The hostile load test's finding: an Ingress killed while finishing a chunked upload
    left its claim for ``finalize_timeout_s`` (1 h). Claims are owner-leased like credit
    holds: renewed by the live holder, stale once the lease passes without renewal."""
    settings = UploadSettings(max_chunks=16, ttl_s=10_000, finalize_timeout_s=3600)
    limits = MediaLimits(max_image_bytes=1000, max_video_bytes=5000)
    dead = ChunkStore(tmp_path / "uploads", settings, limits, clock=clock, claim_lease_s=30)
    live = ChunkStore(tmp_path / "uploads", settings, limits, clock=clock, claim_lease_s=30)
    put(dead, tmp_path, 0, 1, JPEG_HEAD)
    put(dead, tmp_path, 0, 1, JPEG_HEAD, upload_id="u2")
    assert dead.claim(1, "u1") is not None
    kept = live.claim(1, "u2")
    assert kept is not None
    for _ in range(4):  # the live replica renews its claim on every beat; the dead one cannot
        clock.now += 10
        live.renew_claims()
    assert live.claim(1, "u1") is not None  # 40 s > the 30 s lease: taken over
    assert dead.claim(1, "u2") is None  # renewed: still held
    live.release(kept)
    assert dead.claim(1, "u2") is not None
