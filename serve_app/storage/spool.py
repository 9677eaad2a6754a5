"""Streaming uploads to disk under server-generated names, with a size limit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from serve_app.errors import MediaRejected, MediaTooLarge

CHUNK_BYTES = 1024 * 1024
#: Buffer of the one-thread copy: small enough that glibc serves it from the same
#: free list every time (big, short-lived buffers across threads inflate RSS).
COPY_BYTES = 64 * 1024


class AsyncReadable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class SpooledFile:
    """An upload written to ``path``; ``filename`` is the client's name, untrusted."""

    path: Path
    size: int
    filename: str

    def read_head(self, n: int = 64) -> bytes:
        with self.path.open("rb") as f:
            return f.read(n)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def spool_upload(
    source: AsyncReadable, spool_dir: Path, filename: str, max_bytes: int
) -> SpooledFile:
    """Copy ``source`` to a new file in ``spool_dir``, chunk by chunk.

    A source with a synchronous ``file`` (Starlette's ``UploadFile``) is copied by
    :func:`copy_to_spool` in one worker thread with a small buffer.

    Raises:
        MediaTooLarge: as soon as more than ``max_bytes`` arrive (the partial file
            is removed).
        MediaRejected: the upload is empty.
    """
    raw = getattr(source, "file", None)
    if raw is not None and hasattr(raw, "read"):
        return await asyncio.to_thread(copy_to_spool, raw, spool_dir, filename, max_bytes)
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    path = spool_dir / f"{uuid.uuid4().hex}.upload"
    size = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := await source.read(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise MediaTooLarge(
                        f"upload exceeds the limit of {max_bytes // (1024 * 1024)} MiB"
                    )
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise MediaRejected("the uploaded file is empty")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return SpooledFile(path=path, size=size, filename=filename)


def copy_to_spool(source: BinaryIO, spool_dir: Path, filename: str, max_bytes: int) -> SpooledFile:
    """Blocking :func:`spool_upload` from a binary file object (same errors)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = spool_dir / f"{uuid.uuid4().hex}.upload"
    size = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while block := source.read(COPY_BYTES):
                size += len(block)
                if size > max_bytes:
                    raise MediaTooLarge(
                        f"upload exceeds the limit of {max_bytes // (1024 * 1024)} MiB"
                    )
                out.write(block)
        if size == 0:
            raise MediaRejected("the uploaded file is empty")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return SpooledFile(path=path, size=size, filename=filename)


@contextlib.asynccontextmanager
async def spooled(
    source: AsyncReadable, spool_dir: Path, filename: str, max_bytes: int
) -> AsyncIterator[SpooledFile]:
    """:func:`spool_upload` that removes the file when the block ends."""
    spooled_file = await spool_upload(source, spool_dir, filename, max_bytes)
    try:
        yield spooled_file
    finally:
        spooled_file.discard()
