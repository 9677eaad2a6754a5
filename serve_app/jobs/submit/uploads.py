"""Signed upload URLs, receiving an upload, and serving a job's results by signed URL.

Object keys double as URL paths (see :mod:`serve_app.jobs.status`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable
from pathlib import PurePath
from typing import BinaryIO

from serve_app.accounts.users import User
from serve_app.errors import InvalidRequest, MediaTooLarge, NotFound
from serve_app.jobs.context import JobsContext
from serve_app.jobs.status import object_url
from serve_app.media.detect import check_extension, detect_media_type
from serve_app.media.frames import MediaKind
from serve_app.storage.blob import check_key

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


def upload_url(ctx: JobsContext, user: User, file_name: str, base_url: str) -> str:
    """A new signed upload URL for a video called ``file_name`` (extension checked)."""
    suffix = PurePath(file_name.replace("\\", "/")).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise InvalidRequest(f"file_name must end in one of {', '.join(VIDEO_EXTENSIONS)}")
    key = f"uploads/{user.id}-{uuid.uuid4().hex}{suffix}"
    url = object_url(ctx, base_url, key, "PUT", user.id, ctx.jobs.upload_url_ttl_s)
    assert url is not None
    return url


def upload_limit(ctx: JobsContext) -> int:
    settings = ctx.settings
    return min(
        ctx.jobs.max_upload_bytes, settings.media.max_video_bytes, settings.max_request_bytes
    )


def verify_upload(ctx: JobsContext, key: str, params: dict[str, str]) -> int:
    """The uploader's user id. Raises PermissionDenied (403) for a bad signature."""
    return ctx.signer.verify("PUT", check_key(key), params)


async def receive_upload(
    ctx: JobsContext, key: str, chunks: AsyncIterable[bytes], declared: int | None
) -> int:
    """Stream an upload into the blob store: video content only, size-capped.

    Raises:
        MediaTooLarge: over the limit (by ``Content-Length`` or while streaming).
        UnsupportedMedia: not a video, or content that does not fit the extension.
    """
    limit = upload_limit(ctx)
    if declared is not None and declared > limit:
        raise MediaTooLarge(f"upload is {declared} bytes; the limit is {limit} bytes")

    def check(head: bytes) -> None:
        detected = detect_media_type(head)
        if detected.kind is not MediaKind.VIDEO:
            raise InvalidRequest(f"expected a video, got a {detected.format} image")
        check_extension(key, detected)

    return await ctx.blobs.put_stream(key, chunks, limit, check)


def open_result(ctx: JobsContext, key: str, params: dict[str, str]) -> BinaryIO:
    """The results file a signed GET URL names. Raises PermissionDenied, NotFound."""
    ctx.signer.verify("GET", check_key(key), params)
    if not key.startswith("results/"):
        raise NotFound("no such object")
    return ctx.blobs.open(key)
