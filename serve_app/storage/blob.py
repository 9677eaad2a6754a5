"""Blob storage for uploaded videos and job results: a local directory or S3.

Keys are chosen by the server (``uploads/...``, ``inputs/...``, ``results/...``) and
checked against :data:`KEY_PATTERN`, so no client text ever becomes a path. Writes are atomic: a
reader sees the old object or the whole new one, never a partial file, and a write
that fails (size cap, bad content, client gone) leaves nothing behind.
:meth:`BlobStore.copy` makes an immutable copy: a job binds the upload it was
submitted with, and a later write to the upload's key does not change the copy.

:class:`LocalBlobStore` is the default (one node, or a shared file system);
:class:`S3BlobStore` (optional extra ``s3``: boto3) serves multi-node clusters whose
replicas share no disk; clients then upload and download by presigned S3 URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

from serve_app.errors import InvalidRequest, MediaRejected, MediaTooLarge, NotFound

#: ``<namespace>/<name>``: a fixed namespace, then one safe file name.
KEY_PATTERN = re.compile(r"^(uploads|inputs|results)/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Bytes collected before the ``check_head`` callback of :meth:`BlobStore.put_stream` runs.
HEAD_BYTES = 4096

Method = Literal["GET", "PUT"]
HeadCheck = Callable[[bytes], None]


def check_key(key: str) -> str:
    """``key`` if it is a valid object key.

    Raises:
        InvalidRequest: anything else (path separators, ``..``, odd characters).
    """
    if not KEY_PATTERN.match(key) or ".." in key:
        raise InvalidRequest("invalid object key")
    return key


class BlobStore(Protocol):
    """Where uploads and results live; see the module docstring."""

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        max_bytes: int,
        check_head: HeadCheck | None = None,
    ) -> int:
        """Store ``chunks`` under ``key``; returns the size.

        ``check_head`` sees the first :data:`HEAD_BYTES` bytes (fewer for a shorter
        body) before anything is stored and may raise to refuse the content.

        Raises:
            MediaTooLarge: more than ``max_bytes`` arrived (nothing is stored).
            MediaRejected: the body is empty.
        """
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing any object there), atomically."""
        ...

    def copy(self, source: str, dest: str) -> int:
        """Store the current object at ``source`` under ``dest`` too; returns its size.

        The copy is a snapshot: later writes to ``source`` do not change ``dest``.

        Raises:
            NotFound: nothing is stored at ``source``.
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """A binary stream of the object. Raises NotFound."""
        ...

    def read_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int:
        """The object's size in bytes. Raises NotFound."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the object; False when there was none."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file this process can read directly, or None (remote stores)."""
        ...

    def download_to(self, key: str, dest: Path) -> None:
        """Copy the object to ``dest``. Raises NotFound."""
        ...

    def presigned_url(self, key: str, method: Method, expires_s: int) -> str | None:
        """A URL of the store itself, or None when the service signs its own URLs."""
        ...

    def key_for_url(self, url: str) -> str | None:
        """The key a :meth:`presigned_url` of this store points at, else None."""
        ...


async def _collect_head(
    chunks: AsyncIterable[bytes], check_head: HeadCheck | None
) -> tuple[bytes, Any]:
    """The first :data:`HEAD_BYTES` bytes (checked), and the iterator to go on with."""
    iterator = aiter(chunks)
    head = b""
    while len(head) < HEAD_BYTES:
        try:
            head += await anext(iterator)
        except StopAsyncIteration:
            break
    if not head:
        raise MediaRejected("the uploaded file is empty")
    if check_head is not None:
        check_head(head[:HEAD_BYTES])
    return head, iterator


def content_type(key: str) -> str:
    """The media type an object is served with, by its name (results: JSON to browsers)."""
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _too_large(max_bytes: int) -> MediaTooLarge:
    return MediaTooLarge(f"upload exceeds the limit of {max_bytes} bytes")


class LocalBlobStore:
    """Objects as files under ``root`` (mode 0600), written to a temp file and renamed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._tmp = self.root / ".tmp"

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise InvalidRequest("invalid object key")
        return path

    def _new_temp(self) -> tuple[Path, BinaryIO]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        path = self._tmp / uuid.uuid4().hex
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return path, os.fdopen(fd, "wb")

    def _publish(self, temp: Path, key: str) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        max_bytes: int,
        check_head: HeadCheck | None = None,
    ) -> int:
        self._path(key)
        head, rest = await _collect_head(chunks, check_head)
        temp, out = await asyncio.to_thread(self._new_temp)
        size = 0
        try:
            with out:
                data = head
                while True:
                    size += len(data)
                    if size > max_bytes:
                        raise _too_large(max_bytes)
                    await asyncio.to_thread(out.write, data)
                    try:
                        data = await anext(rest)
                    except StopAsyncIteration:
                        break
            await asyncio.to_thread(self._publish, temp, key)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        return size

    def put_bytes(self, key: str, data: bytes) -> None:
        self._path(key)
        temp, out = self._new_temp()
        try:
            with out:
                out.write(data)
            self._publish(temp, key)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise

    def copy(self, source: str, dest: str) -> int:
        """A hard link (a copy where links are not supported): every write replaces
        the file at a key by renaming a new one over it, never changing it in place,
        so the linked file keeps the bytes it had."""
        src = self._path(source)
        self._path(dest)
        temp = self._tmp / uuid.uuid4().hex
        self._tmp.mkdir(parents=True, exist_ok=True)
        try:
            try:
                os.link(src, temp)
            except FileNotFoundError:
                raise NotFound("no such object") from None
            except OSError:
                shutil.copyfile(src, temp)
            size = temp.stat().st_size
            self._publish(temp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        return size

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound("no such object") from None

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound("no such object") from None

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def download_to(self, key: str, dest: Path) -> None:
        with self.open(key) as src, Path(dest).open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)

    def presigned_url(self, key: str, method: Method, expires_s: int) -> str | None:
        return None

    def key_for_url(self, url: str) -> str | None:
        return None


class S3BlobStore:
    """Objects in an S3 (or S3-compatible) bucket under ``prefix``; boto3 imported lazily.

    Args:
        client: a boto3 S3 client (tests pass one); default: made on first use from
            the usual AWS environment/config, with ``endpoint_url`` and ``region``.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise RuntimeError(
                    "the S3 blob store needs boto3: pip install 'serve_app[s3]'"
                ) from exc
            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=Config(signature_version="s3v4"),
            )
        return self._client

    def object_name(self, key: str) -> str:
        """The S3 object name of ``key``."""
        return self.prefix + check_key(key)

    def _missing(self, exc: Exception) -> bool:
        response = cast(dict[str, Any], getattr(exc, "response", {}) or {})
        code = str(response.get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        max_bytes: int,
        check_head: HeadCheck | None = None,
    ) -> int:
        name = self.object_name(key)
        head, rest = await _collect_head(chunks, check_head)
        size = 0
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            data = head
            while True:
                size += len(data)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                spool.write(data)
                try:
                    data = await anext(rest)
                except StopAsyncIteration:
                    break
            spool.seek(0)
            extra = {"ContentType": content_type(key)}
            await asyncio.to_thread(
                self.client.upload_fileobj, spool, self.bucket, name, ExtraArgs=extra
            )
        return size

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.object_name(key), Body=data, ContentType=content_type(key)
        )

    def copy(self, source: str, dest: str) -> int:
        """A server-side ``CopyObject`` (one object version, copied whole)."""
        name = self.object_name(dest)
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=name,
                CopySource={"Bucket": self.bucket, "Key": self.object_name(source)},
            )
        except Exception as exc:
            if self._missing(exc):
                raise NotFound("no such object") from None
            raise
        return self.size(dest)

    def open(self, key: str) -> BinaryIO:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_name(key))["Body"]
        except Exception as exc:
            if self._missing(exc):
                raise NotFound("no such object") from None
            raise
        return cast(BinaryIO, body)

    def read_bytes(self, key: str) -> bytes:
        with contextlib.closing(self.open(key)) as body:
            return body.read()

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
        except Exception as exc:
            if self._missing(exc):
                raise NotFound("no such object") from None
            raise
        return int(meta["ContentLength"])

    def delete(self, key: str) -> bool:
        existed = self.exists(key)
        self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key))
        return existed

    def local_path(self, key: str) -> Path | None:
        return None

    def download_to(self, key: str, dest: Path) -> None:
        try:
            self.client.download_file(self.bucket, self.object_name(key), str(dest))
        except Exception as exc:
            if self._missing(exc):
                raise NotFound("no such object") from None
            raise

    def presigned_url(self, key: str, method: Method, expires_s: int) -> str | None:
        operation = "get_object" if method == "GET" else "put_object"
        return str(
            self.client.generate_presigned_url(
                ClientMethod=operation,
                Params={"Bucket": self.bucket, "Key": self.object_name(key)},
                ExpiresIn=int(expires_s),
            )
        )

    def key_for_url(self, url: str) -> str | None:
        """Recognise a presigned URL of this bucket (path- or virtual-host style)."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        signed = "X-Amz-Signature" in query or "Signature" in query
        if parts.scheme not in ("http", "https") or not signed:
            return None
        host = (parts.hostname or "").lower()
        path = unquote(parts.path).lstrip("/")
        if host.startswith(self.bucket.lower() + "."):
            name = path
        elif path.startswith(self.bucket + "/"):
            name = path[len(self.bucket) + 1 :]
        else:
            return None
        if not name.startswith(self.prefix):
            return None
        key = name[len(self.prefix) :]
        return key if KEY_PATTERN.match(key) and ".." not in key else None
