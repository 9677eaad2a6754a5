"""Media files cross replicas through Ray's object store, never as paths.

The ingress keeps an upload as a file in its own node's spool; the domain passes one
above ``inline_media_bytes`` on as a :class:`~pathlib.Path` (small ones inline, as
bytes). A path means nothing on another node, so before a call leaves the ingress
:func:`ship` memory-maps the file and puts it into the object store as a ``uint8``
array: the bytes go from the page cache into shared memory, not through the ingress's
heap. The extractor receives the array zero-copy (read-only shared memory, fetched to
its node by Ray) and :func:`landed` writes it to a file in its own node's spool, which
it decodes (bounded memory, as any file) and removes. The object is freed when the
ingress's reference and the call that holds it are gone; Ray spills it to disk when
the store is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import ray

from serve_app.pipeline.protocol import MediaRef

#: What a shipped file is on the wire (an ``ObjectRef``) and on arrival (an array).
Shipped = ray.ObjectRef
Arrived = np.ndarray


def _put_file(path: Path) -> Shipped:
    if path.stat().st_size == 0:
        return ray.put(np.empty(0, dtype=np.uint8))
    # A plain ndarray view of the map: Ray serializes it out of band, straight from
    # the page cache; the map closes when the last view is gone.
    return ray.put(np.asarray(np.memmap(path, dtype=np.uint8, mode="r")))


async def ship(media: MediaRef) -> MediaRef | Shipped:
    """``media`` as another node can read it: bytes as they are, a file as an object."""
    if isinstance(media, Path):
        return await asyncio.to_thread(_put_file, media)
    return media


@contextlib.contextmanager
def landed(media: MediaRef | Arrived, spool_dir: Path) -> Iterator[MediaRef]:
    """``media`` as the extraction code reads it; a shipped array becomes a spool file."""
    if not isinstance(media, np.ndarray):
        yield media
        return
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix="shipped-", suffix=".media")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(media.data)  # straight from shared memory
        yield path
    finally:
        path.unlink(missing_ok=True)
