"""One frame of a job's input video as a JPEG, decoded the way the job runner decodes.

The web page draws the boxes of a job's results on these frames, so a frame must match
the runner's exactly: the same probe (rotation), the same frame numbering (presentation
order of the demuxed packets, as ``frame_offsets`` in the results) and the same decode
and conversion (:func:`~serve_app.media.stream.iter_frames`), at the upright size of
the source video, which is the size the boxes are reported in. Only where decoding
starts differs: at the keyframe before the frame instead of the stream's start (and
from the start after all when the container cannot seek there), so a frame near the
end of a long video does not cost a decode of the whole video.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serve_app.accounts.users import User
from serve_app.engines.jpeg import encode_jpeg
from serve_app.errors import Gone, InvalidRequest, MediaRejected, NotFound
from serve_app.jobs.context import JobsContext
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import VideoInfo, open_container, probe_video
from serve_app.media.sampling import StreamIndex, index_stream
from serve_app.media.stream import FramePlan, iter_frames, output_size

JPEG_QUALITY = 90


@dataclass(frozen=True)
class DecodedFrame:
    """One upright RGB frame ``(H, W, 3)`` and where it sits in the video."""

    rgb: np.ndarray
    frame_offset: int
    time_offset: float


@dataclass(frozen=True)
class FrameImage:
    """A frame of a job's input as JPEG bytes; ``width``/``height`` in pixels."""

    jpeg: bytes
    width: int
    height: int
    frame_offset: int
    time_offset: float


def _remaining(limits: MediaLimits, deadline: float) -> MediaLimits:
    """``limits`` with what is left of the time budget (one budget for all passes)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise MediaRejected("decoding took too long")
    return limits.model_copy(update={"decode_timeout_s": left})


def seek_point(index: StreamIndex, target_pts: int) -> int | None:
    """pts of the last keyframe at or before ``target_pts``; None: decode from the start."""
    keys = index.pts[index.keyframe]
    before = keys[keys <= target_pts]
    if not len(before) or int(before.max()) == int(index.pts[0]):
        return None
    return int(before.max())


def decode_frame(path: Path, frame_offset: int, limits: MediaLimits) -> DecodedFrame:
    """Frame ``frame_offset`` (presentation order, from 0) of the video at ``path``.

    Probing, indexing and decoding share one ``limits.decode_timeout_s`` budget.

    Raises:
        InvalidRequest: ``frame_offset`` is negative or beyond the video's last frame.
        MediaRejected: the frame does not decode, or the time budget ran out.
        MediaTooLarge, UnsupportedMedia: the video no longer passes ``limits``.
    """
    if frame_offset < 0:
        raise InvalidRequest("frame_offset must be 0 or more")
    deadline = time.monotonic() + limits.decode_timeout_s
    info: VideoInfo = probe_video(path, _remaining(limits, deadline))
    with open_container(path, info.container) as (container, stream):
        index = index_stream(container, stream, limits, deadline)
    if frame_offset >= index.frame_count:
        raise InvalidRequest(
            f"frame_offset {frame_offset} is beyond the video's last frame "
            f"({index.frame_count - 1})"
        )
    target = int(index.presentation_pts()[frame_offset])
    plan = FramePlan(
        frame_indices=(frame_offset,),
        timestamps=(float(index.timestamps()[frame_offset]),),
        pts=(target,),
        size=output_size(info, 0),
    )
    seek = seek_point(index, target)
    attempts = (seek, None) if seek is not None else (None,)
    for seek_pts in attempts:
        chunks = iter_frames(path, info, plan, 1, _remaining(limits, deadline), seek_pts=seek_pts)
        for chunk in chunks:
            return DecodedFrame(chunk.frames[0], frame_offset, chunk.timestamps[0])
    raise MediaRejected(f"frame {frame_offset} of the video cannot be decoded")


def frame_jpeg(path: Path, frame_offset: int, limits: MediaLimits) -> FrameImage:
    """:func:`decode_frame`, encoded as JPEG."""
    frame = decode_frame(path, frame_offset, limits)
    height, width = frame.rgb.shape[:2]
    return FrameImage(
        jpeg=encode_jpeg(np.ascontiguousarray(frame.rgb), JPEG_QUALITY),
        width=width,
        height=height,
        frame_offset=frame.frame_offset,
        time_offset=frame.time_offset,
    )


@contextlib.contextmanager
def _local_input(ctx: JobsContext, key: str) -> Iterator[Path]:
    """A local file with the blob ``key`` (a temporary download from remote stores).

    Raises:
        Gone: the object no longer exists.
    """
    local = ctx.blobs.local_path(key)
    if local is not None:
        if not local.is_file():
            raise Gone("the job's input video no longer exists")
        yield local
        return
    spool = ctx.settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"frame-{uuid.uuid4().hex}.input"
    try:
        try:
            ctx.blobs.download_to(key, path)
        except NotFound:
            raise Gone("the job's input video no longer exists") from None
        yield path
    finally:
        path.unlink(missing_ok=True)


def _job_frame(ctx: JobsContext, user: User, job_id: str, frame_offset: int) -> FrameImage:
    record = ctx.store.get(job_id, user.id, "infer")
    if record.input_key is None:
        raise Gone("the job's input came from input_url; the service keeps no copy of it")
    with _local_input(ctx, record.input_key) as path:
        return frame_jpeg(path, frame_offset, ctx.settings.media)


async def job_frame(ctx: JobsContext, user: User, job_id: str, frame_offset: int) -> FrameImage:
    """Frame ``frame_offset`` of the input video of ``user``'s job ``job_id``, as JPEG.

    Runs in a worker thread, within the media decode time limit
    (``media.decode_timeout_s``). The image has the source video's upright size: the
    pixel space of the boxes in the job's results.

    Raises:
        NotFound: no such job of ``user``.
        Gone: the input video is no longer in the blob store (or was never stored
            there: jobs submitted with a public ``input_url``).
        InvalidRequest: ``frame_offset`` is negative or beyond the last frame.
        MediaRejected: the frame does not decode in time.
    """
    return await asyncio.to_thread(_job_frame, ctx, user, job_id, frame_offset)
