"""The blob stores: local atomic writes with caps, and S3 key and URL logic offline."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from serve_app.errors import InvalidRequest, MediaRejected, MediaTooLarge, NotFound
from serve_app.storage.blob import LocalBlobStore, S3BlobStore, check_key


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "key",
    ["uploads/../x", "uploads/a/b", "/etc/passwd", "other/x", "uploads/", "uploads/.hidden", "x"],
)
def test_only_server_shaped_keys_are_accepted(key: str) -> None:
    with pytest.raises(InvalidRequest):
        check_key(key)


async def test_local_put_stream_writes_atomically_with_private_mode(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    size = await store.put_stream("uploads/a.mp4", chunks(b"ab" * 3000, b"cd"), 10_000)
    assert size == 6002
    path = store.local_path("uploads/a.mp4")
    assert path is not None and path.read_bytes() == b"ab" * 3000 + b"cd"
    assert path.stat().st_mode & 0o077 == 0
    assert store.exists("uploads/a.mp4") and store.size("uploads/a.mp4") == 6002
    assert leftovers(tmp_path) == [path]  # no temp file left behind


async def test_local_put_stream_over_the_cap_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(MediaTooLarge):
        await store.put_stream("uploads/a.mp4", chunks(b"x" * 5000, b"y" * 5001), 10_000)
    assert leftovers(tmp_path) == []
    assert not store.exists("uploads/a.mp4")


async def test_local_head_check_refuses_before_anything_is_stored(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    seen: list[bytes] = []

    def check(head: bytes) -> None:
        seen.append(head)
        raise InvalidRequest("not a video")

    with pytest.raises(InvalidRequest):
        await store.put_stream("uploads/a.mp4", chunks(b"a" * 3000, b"b" * 3000), 10**6, check)
    assert len(seen[0]) == 4096
    assert leftovers(tmp_path) == []


async def test_local_empty_upload_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(MediaRejected):
        await LocalBlobStore(tmp_path).put_stream("uploads/a.mp4", chunks(), 10)


async def test_local_failed_overwrite_keeps_the_old_object(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put_bytes("results/j.json", b"old")
    with pytest.raises(MediaTooLarge):
        await store.put_stream("results/j.json", chunks(b"n" * 20), 10)
    assert store.read_bytes("results/j.json") == b"old"
    store.put_bytes("results/j.json", b"new")
    assert store.read_bytes("results/j.json") == b"new"


def test_local_read_delete_and_download(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes("results/j.json", b"{}")
    store.download_to("results/j.json", tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"{}"
    assert store.delete("results/j.json") and not store.delete("results/j.json")
    with pytest.raises(NotFound):
        store.open("results/j.json")
    with pytest.raises(NotFound):
        store.size("results/j.json")
    assert store.presigned_url("results/j.json", "GET", 60) is None
    assert store.key_for_url("http://x/uploads/a.mp4?sig=1") is None


def s3_client(endpoint: str | None = None) -> Any:
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4"),
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )


def test_s3_presigned_urls_are_made_offline_and_recognised() -> None:
    store = S3BlobStore("media-bucket", prefix="svc", client=s3_client())
    assert store.object_name("uploads/a.mp4") == "svc/uploads/a.mp4"
    put = store.presigned_url("uploads/a.mp4", "PUT", 600)
    get = store.presigned_url("results/j.json", "GET", 60)
    assert put is not None and get is not None
    assert "svc/uploads/a.mp4" in put and "X-Amz-Signature=" in put and "X-Amz-Expires=600" in put
    assert store.key_for_url(put) == "uploads/a.mp4"
    assert store.key_for_url(get) == "results/j.json"
    other = S3BlobStore("other-bucket", prefix="svc", client=s3_client())
    assert other.key_for_url(put) is None
    assert S3BlobStore("media-bucket", prefix="x/", client=s3_client()).key_for_url(put) is None
    assert store.key_for_url("https://media-bucket.s3.amazonaws.com/svc/uploads/a.mp4") is None


def test_s3_path_style_endpoint_urls_are_recognised() -> None:
    store = S3BlobStore(
        "b",
        endpoint_url="http://minio.internal:9000",
        client=s3_client("http://minio.internal:9000"),
    )
    url = store.presigned_url("uploads/v.mp4", "PUT", 60)
    assert url is not None and url.startswith("http://minio.internal:9000/b/uploads/v.mp4?")
    assert store.key_for_url(url) == "uploads/v.mp4"


class FakeS3:
    """The few client calls the store makes, in memory."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def _missing(self) -> Exception:
        error = Exception("missing")
        error.response = {"Error": {"Code": "404"}}  # type: ignore[attr-defined]
        return error

    def upload_fileobj(
        self, f: Any, bucket: str, key: str, ExtraArgs: dict[str, str] | None = None
    ) -> None:
        self.objects[bucket, key] = f.read()

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str = "") -> None:
        self.objects[Bucket, Key] = Body

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if (Bucket, Key) not in self.objects:
            raise self._missing()
        return {"Body": io.BytesIO(self.objects[Bucket, Key])}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if (Bucket, Key) not in self.objects:
            raise self._missing()
        return {"ContentLength": len(self.objects[Bucket, Key])}

    def copy_object(self, Bucket: str, Key: str, CopySource: dict[str, str]) -> None:
        source = (CopySource["Bucket"], CopySource["Key"])
        if source not in self.objects:
            raise self._missing()
        self.objects[Bucket, Key] = self.objects[source]

    def generate_presigned_url(self, **kwargs: Any) -> str:
        return str(s3_client().generate_presigned_url(**kwargs))  # offline

    def delete_object(self, Bucket: str, Key: str) -> None:
        self.objects.pop((Bucket, Key), None)

    def download_file(self, bucket: str, key: str, dest: str) -> None:
        if (bucket, key) not in self.objects:
            raise self._missing()
        Path(dest).write_bytes(self.objects[bucket, key])


async def test_s3_store_operations_against_a_fake_client(tmp_path: Path) -> None:
    fake = FakeS3()
    store = S3BlobStore("b", prefix="p/", client=fake)
    assert await store.put_stream("uploads/a.mp4", chunks(b"12", b"34"), 10) == 4
    assert fake.objects["b", "p/uploads/a.mp4"] == b"1234"
    with pytest.raises(MediaTooLarge):
        await store.put_stream("uploads/b.mp4", chunks(b"x" * 11), 10)
    assert ("b", "p/uploads/b.mp4") not in fake.objects
    store.put_bytes("results/j.json", b"{}")
    assert store.read_bytes("results/j.json") == b"{}"
    assert store.size("uploads/a.mp4") == 4 and store.exists("uploads/a.mp4")
    assert store.local_path("uploads/a.mp4") is None
    store.download_to("uploads/a.mp4", tmp_path / "a")
    assert (tmp_path / "a").read_bytes() == b"1234"
    assert store.delete("uploads/a.mp4") and not store.exists("uploads/a.mp4")
    with pytest.raises(NotFound):
        store.open("uploads/a.mp4")
    with pytest.raises(NotFound):
        store.download_to("uploads/a.mp4", tmp_path / "b")


async def test_copies_are_snapshots_in_both_stores(tmp_path: Path) -> None:
    """A job's bound input (``copy``) keeps its bytes when the upload is replaced."""
    stores: list[Any] = [LocalBlobStore(tmp_path / "blobs"), S3BlobStore("b", client=FakeS3())]
    for store in stores:
        await store.put_stream("uploads/a.mp4", chunks(b"short"), 100)
        assert store.copy("uploads/a.mp4", "inputs/job-1.mp4") == 5
        await store.put_stream("uploads/a.mp4", chunks(b"a longer one"), 100)
        store.put_bytes("uploads/a.mp4", b"and another")
        assert store.read_bytes("inputs/job-1.mp4") == b"short"
        assert store.read_bytes("uploads/a.mp4") == b"and another"
        with pytest.raises(NotFound):
            store.copy("uploads/missing.mp4", "inputs/job-2.mp4")
        assert not store.exists("inputs/job-2.mp4")
    assert not list((tmp_path / "blobs" / ".tmp").iterdir())
