"""Streaming uploads to disk under server-generated names, with a size limit.

Every spooled upload (``*.upload``) is held by the process that made its
:class:`SpooledFile` until :meth:`SpooledFile.discard`: :func:`renew_held` touches
the held files (their modification time is the lease), and :func:`sweep_orphans`
removes upload files no live process has touched for a lease: those of a killed
ingress replica, found by the survivors' beat or at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from serve_app.errors import InsufficientStorage, MediaRejected, MediaTooLarge

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
#: Buffer of the one-thread copy: small enough that glibc serves it from the same
#: free list every time (big, short-lived buffers across threads inflate RSS).
COPY_BYTES = 64 * 1024


_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(exc: BaseException) -> InsufficientStorage | None:
    """The retryable error for an ``OSError`` that says the disk is full, else None."""
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return InsufficientStorage("the server is out of disk space right now; retry later")
    return None


@contextlib.contextmanager
def out_of_space_is_retryable() -> Iterator[None]:
    """Turn a full disk inside the block into :class:`InsufficientStorage`."""
    try:
        yield
    except OSError as exc:
        full = disk_full(exc)
        if full is None:
            raise
        raise full from None


class AsyncReadable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class SpooledFile:
    """An upload written to ``path``; ``filename`` is the client's name, untrusted."""

    path: Path
    size: int
    filename: str

    def __post_init__(self) -> None:
        if self.path.suffix == UPLOAD_SUFFIX:
            with _held_lock:
                _held.add(self.path)

    def read_head(self, n: int = 64) -> bytes:
        with self.path.open("rb") as f:
            return f.read(n)

    def discard(self) -> None:
        with _held_lock:
            _held.discard(self.path)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


UPLOAD_SUFFIX = ".upload"
_held: set[Path] = set()
_held_lock = threading.Lock()


def renew_held() -> int:
    """Touch every upload file this process holds (renews their leases)."""
    with _held_lock:
        held = list(_held)
    renewed = 0
    for path in held:
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
            renewed += 1
    return renewed


def sweep_orphans(spool_dir: Path, lease_s: float) -> int:
    """Remove upload files in ``spool_dir`` untouched for ``lease_s`` and not held here."""
    cutoff = time.time() - lease_s
    with _held_lock:
        held = set(_held)
    removed = 0
    for path in spool_dir.glob(f"*{UPLOAD_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if path not in held and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    if removed:
        logger.warning("removed %d spooled uploads no live request owns", removed)
    return removed


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
        InsufficientStorage: the disk is full (the partial file is removed).
    """
    raw = getattr(source, "file", None)
    if raw is not None and hasattr(raw, "read"):
        return await asyncio.to_thread(copy_to_spool, raw, spool_dir, filename, max_bytes)
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    path = spool_dir / f"{uuid.uuid4().hex}.upload"
    size = 0
    try:
        with out_of_space_is_retryable():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            out = os.fdopen(fd, "wb")
        with out, out_of_space_is_retryable():
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
        with out_of_space_is_retryable():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            out = os.fdopen(fd, "wb")
        with out, out_of_space_is_retryable():
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
