"""One frame of a job's input: the runner's decode, frame by frame, from either blob store."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serve_app.config import Settings
from serve_app.errors import Gone, InvalidRequest, MediaRejected, NotFound
from serve_app.jobs.context import JobsContext
from serve_app.jobs.submit import frame_images
from serve_app.jobs.submit.frame_images import decode_frame, frame_jpeg, job_frame, seek_point
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import open_container, probe_video
from serve_app.media.sampling import index_stream
from serve_app.media.stream import iter_frames, plan_frames
from serve_app.storage.blob import S3BlobStore
from tests.jobs.conftest import make_user, new_job
from tests.jobs.support import jobs_context, upload
from tests.storage.test_blob import FakeS3
from tests.support.media_files import decode_index, make_video

LIMITS = MediaLimits()
VIDEOS = {
    "h264-gop12": {"gop": 12},
    "h264-rotated-90": {"gop": 12, "rotation": 90},
    "vp9-webm-no-index": {"codec": "vp9", "container": "webm", "gop": 12, "live": True},
    "h264-vfr": {"gop": 10, "vfr": True},
}


@pytest.fixture(scope="module", params=list(VIDEOS))
def video(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    options = VIDEOS[request.param]
    suffix = options.get("container", "mp4")
    return make_video(tmp_path_factory.mktemp("v") / f"{request.param}.{suffix}", **options)


def runner_frames(path: Path) -> tuple[tuple[float, ...], np.ndarray]:
    """Every frame decoded as the job runner decodes (one pass, front to back)."""
    info = probe_video(path, LIMITS)
    plan = plan_frames(path, info, 1000.0, LIMITS)  # a rate above the video's: every frame
    assert plan.frame_indices == tuple(range(len(plan.frame_indices)))
    chunks = list(iter_frames(path, info, plan, 16, LIMITS))
    return plan.timestamps, np.concatenate([c.frames for c in chunks])


def test_every_frame_is_the_runners_frame(video: Path) -> None:
    timestamps, frames = runner_frames(video)
    assert len(frames) == 60
    for offset in range(len(frames)):
        frame = decode_frame(video, offset, LIMITS)
        assert np.array_equal(frame.rgb, frames[offset]), offset
        assert frame.frame_offset == offset and frame.time_offset == timestamps[offset]


def test_frames_are_numbered_like_frame_offsets_and_upright(video: Path) -> None:
    rotated = "rotated" in video.name
    for offset in (0, 11, 12, 37, 59):
        rgb = decode_frame(video, offset, LIMITS).rgb
        assert rgb.shape == ((320, 240, 3) if rotated else (240, 320, 3))
        upright = np.rot90(rgb, k=1) if rotated else rgb  # stored turned 90° clockwise
        assert decode_index(np.ascontiguousarray(upright)) == offset


def test_offsets_outside_the_video_are_invalid(video: Path) -> None:
    for offset, words in ((-1, "0 or more"), (60, r"last frame \(59\)"), (10_000, "beyond")):
        with pytest.raises(InvalidRequest, match=words):
            decode_frame(video, offset, LIMITS)


def stream_index(path: Path):
    info = probe_video(path, LIMITS)
    with open_container(path, info.container) as (container, stream):
        return index_stream(container, stream, LIMITS, time.monotonic() + 60)


def test_decoding_starts_at_the_keyframe_before_the_frame(tmp_path: Path, monkeypatch) -> None:
    path = make_video(tmp_path / "gop.mp4", gop=12)
    index = stream_index(path)
    pts = index.presentation_pts()
    keys = np.sort(index.pts[index.keyframe])
    assert len(keys) >= 3  # keyframes every 12 frames or sooner
    offset = int(np.searchsorted(pts, keys[2])) + 2
    assert seek_point(index, int(pts[offset])) == keys[2]
    assert seek_point(index, int(keys[1])) == keys[1]
    assert seek_point(index, int(keys[1]) - 1) is None  # the first keyframe: no seek
    seeks: list[int | None] = []

    def spy(*args, seek_pts=None, **kwargs):
        seeks.append(seek_pts)
        return iter_frames(*args, seek_pts=seek_pts, **kwargs)

    monkeypatch.setattr(frame_images, "iter_frames", spy)
    assert decode_index(decode_frame(path, offset, LIMITS).rgb) == offset
    assert seeks == [keys[2]]  # found after the seek: no second pass


def test_a_seek_past_the_frame_falls_back_to_the_whole_decode(tmp_path: Path, monkeypatch) -> None:
    path = make_video(tmp_path / "gop.mp4", gop=12)
    index = stream_index(path)
    last_key = int(np.max(index.pts[index.keyframe]))
    assert last_key > index.presentation_pts()[30]
    monkeypatch.setattr(frame_images, "seek_point", lambda index, target: last_key)
    seeks: list[int | None] = []

    def spy(*args, seek_pts=None, **kwargs):
        seeks.append(seek_pts)
        return iter_frames(*args, seek_pts=seek_pts, **kwargs)

    monkeypatch.setattr(frame_images, "iter_frames", spy)
    _, frames = runner_frames(path)
    assert np.array_equal(decode_frame(path, 30, LIMITS).rgb, frames[30])
    assert seeks == [last_key, None]


def test_decoding_is_bounded_by_the_time_limit(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4")
    with pytest.raises(MediaRejected, match="too long"):
        decode_frame(path, 5, LIMITS.model_copy(update={"decode_timeout_s": 1e-9}))


def test_frame_jpeg_has_the_frames_size(tmp_path: Path) -> None:
    path = make_video(tmp_path / "r.mp4", rotation=270, width=320, height=240)
    image = frame_jpeg(path, 3, LIMITS)
    assert (image.width, image.height, image.frame_offset) == (240, 320, 3)
    with Image.open(io.BytesIO(image.jpeg)) as jpeg:
        assert (jpeg.format, jpeg.size) == ("JPEG", (240, 320))


async def test_job_frames_are_the_owners_only(accounts, tmp_path, catalog) -> None:
    ctx = jobs_context(accounts, tmp_path / "data", catalog)
    owner, other = make_user(accounts), make_user(accounts)
    video = make_video(tmp_path / "v.mp4", gop=12)
    job = ctx.store.create(new_job(owner, input_key=upload(ctx, video, owner.id)))
    image = await job_frame(ctx, owner, job.id, 25)
    with Image.open(io.BytesIO(image.jpeg)) as jpeg:
        assert decode_index(np.asarray(jpeg.convert("RGB"))) == 25
    with pytest.raises(NotFound):
        await job_frame(ctx, other, job.id, 25)
    with pytest.raises(NotFound):
        await job_frame(ctx, owner, str(uuid.uuid4()), 0)
    with pytest.raises(InvalidRequest):
        await job_frame(ctx, owner, job.id, -1)
    assert job.input_key is not None
    ctx.blobs.delete(job.input_key)
    with pytest.raises(Gone, match="no longer exists"):
        await job_frame(ctx, owner, job.id, 25)
    by_url = ctx.store.create(new_job(owner, input_key=None, input_url="https://example.com/v.mp4"))
    with pytest.raises(Gone, match="input_url"):
        await job_frame(ctx, owner, by_url.id, 0)


async def test_job_frames_from_s3_use_a_temporary_copy(accounts, tmp_path, catalog) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    blobs = S3BlobStore("bucket", prefix="svc/", client=FakeS3())
    ctx = JobsContext.build(settings, accounts.database, catalog, blobs=blobs)
    owner = make_user(accounts)
    video = make_video(tmp_path / "v.mp4", gop=12)
    job = ctx.store.create(new_job(owner, input_key=upload(ctx, video, owner.id)))
    image = await job_frame(ctx, owner, job.id, 40)
    with Image.open(io.BytesIO(image.jpeg)) as jpeg:
        assert decode_index(np.asarray(jpeg.convert("RGB"))) == 40
    assert list(settings.spool_dir.iterdir()) == []  # the copy is gone
    assert job.input_key is not None
    blobs.delete(job.input_key)
    with pytest.raises(Gone):
        await job_frame(ctx, owner, job.id, 40)
    assert list(settings.spool_dir.iterdir()) == []
