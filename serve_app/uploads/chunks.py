"""Chunked uploads: store chunks, report progress, assemble a complete upload.

See :mod:`serve_app.uploads.area` for the layout on disk and how uploads end.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from pathlib import Path
from typing import Any

from serve_app.errors import (
    Conflict,
    Gone,
    InvalidRequest,
    MediaTooLarge,
    NotFound,
    RateLimited,
    UnsupportedMedia,
)
from serve_app.media.detect import check_extension, detect_media_type, read_head
from serve_app.storage.spool import SpooledFile, out_of_space_is_retryable
from serve_app.uploads import files
from serve_app.uploads.area import (
    CHUNK_PREFIX,
    CLAIM,
    MANIFEST,
    RESULT,
    STAGING,
    UploadArea,
    chunk_name,
    read_result,
)
from serve_app.uploads.names import user_key, validate_upload_id
from serve_app.uploads.state import (
    Assembled,
    ChunkRequest,
    Claim,
    Manifest,
    Phase,
    Receipt,
    UploadState,
)

COPY_BYTES = 64 * 1024


class ChunkStore(UploadArea):
    """Stores chunks, tracks progress, assembles complete uploads (one claim each)."""

    # -- checks ----------------------------------------------------------------------

    def check_request(self, request: ChunkRequest) -> None:
        """Refuse a malformed upload id or out-of-range chunk numbers (400)."""
        validate_upload_id(request.upload_id)
        limit = self.settings.max_chunks
        if not 1 <= request.total_chunks <= limit:
            raise InvalidRequest(f"total_chunks must be between 1 and {limit}")
        if not 0 <= request.chunk_number < request.total_chunks:
            raise InvalidRequest("chunk_number must be between 0 and total_chunks - 1")

    def _max_total(self, directory: Path) -> tuple[int, str]:
        """Size cap of the upload: by the type of chunk 0 once it is known."""
        try:
            kind = detect_media_type(read_head(directory / chunk_name(0))).kind.value
        except (FileNotFoundError, UnsupportedMedia):
            return max(self.limits.max_image_bytes, self.limits.max_video_bytes), "file"
        return self.limits.max_bytes(kind), f"{kind} file"

    @staticmethod
    def _same_upload(manifest: Manifest, request: ChunkRequest) -> None:
        if manifest.total_chunks != request.total_chunks:
            raise Conflict(
                f"upload {request.upload_id} has total_chunks={manifest.total_chunks}; "
                "it cannot change mid-upload (use a new upload_id)"
            )
        if manifest.filename != request.filename:
            raise Conflict(
                f"upload {request.upload_id} was started with another filename; "
                "it cannot change mid-upload (use a new upload_id)"
            )

    def _check_quota(self, user_id: int) -> None:
        user_dir = self.root / user_key(user_id)
        try:
            entries = list(os.scandir(user_dir))
        except FileNotFoundError:
            return
        open_uploads = sum(
            1
            for e in entries
            if e.is_dir() and e.name != STAGING and not os.path.exists(Path(e.path) / RESULT)
        )
        if open_uploads >= self.settings.max_open_uploads:
            raise RateLimited(
                f"you have {open_uploads} unfinished uploads; finish one or wait until "
                "abandoned ones expire",
                retry_after_s=60,
            )

    # -- chunks ----------------------------------------------------------------------

    def put_chunk(
        self, user_id: int, request: ChunkRequest, part: Path, expected_sha256: str | None = None
    ) -> Receipt:
        """Store the spooled chunk ``part`` (linked in; the caller removes ``part``).

        Raises:
            InvalidRequest: bad numbers or id, empty chunk, checksum mismatch (400).
            UnsupportedMedia: chunk 0 is not an accepted type for its extension (400;
                the upload is discarded).
            MediaTooLarge: the upload now exceeds its type's size limit (413;
                discarded).
            Conflict: other bytes for a stored chunk, or a changed ``total_chunks`` or
                ``filename`` (409).
            Gone: the upload expired or was discarded (410).
            RateLimited: too many unfinished uploads (429).
        """
        self.check_request(request)
        n = request.chunk_number
        directory = self._directory(user_id, request.upload_id)
        manifest = self._manifest(directory, request.upload_id)
        if manifest is not None:
            self._same_upload(manifest, request)
        size = part.stat().st_size
        if size == 0:
            raise InvalidRequest(f"chunk {n} is empty")
        digest = files.sha256_file(part)
        if expected_sha256 is not None and not hmac.compare_digest(
            expected_sha256.strip().lower(), digest
        ):
            raise InvalidRequest(f"chunk {n} does not match chunk_sha256; it was discarded")
        if manifest is not None:
            done = read_result(directory)
            if done is not None:
                return self._replay(done, manifest, request, digest)
        if n == 0 and not (directory / chunk_name(0)).exists():
            try:
                check_extension(request.filename or None, detect_media_type(read_head(part)))
            except UnsupportedMedia as exc:  # no later chunk can fix it: refuse them all
                self._discard(directory, "was rejected: " + exc.detail)
                raise
        if manifest is None:
            self._check_quota(user_id)
            manifest = self._create(directory, request)
        self._link(part, directory / chunk_name(n), digest, request)
        done = read_result(directory)
        if done is not None:  # finished by a concurrent request while this chunk arrived
            files.unlink_quietly(directory / chunk_name(n))
            return self._replay(done, manifest, request, digest)
        state = self._state(directory, manifest)
        cap, what = self._max_total(directory)
        if state.received_bytes > cap:
            detail = f"the upload exceeds the {what} limit of {cap} bytes; it was discarded"
            self._discard(directory, "was rejected: " + detail)
            raise MediaTooLarge(detail)
        return Receipt(state=state)

    def _create(self, directory: Path, request: ChunkRequest) -> Manifest:
        manifest = Manifest(
            upload_id=request.upload_id,
            total_chunks=request.total_chunks,
            filename=request.filename,
            created_at=self._clock(),
        )
        directory.mkdir(parents=True, exist_ok=True)
        try:
            if files.write_json(directory / MANIFEST, manifest.to_json(), exclusive=True):
                return manifest
            existing = Manifest.from_json(files.read_json(directory / MANIFEST))
        except FileNotFoundError:
            raise Gone(f"upload {request.upload_id} was removed while this chunk arrived") from None
        self._same_upload(existing, request)
        return existing

    @staticmethod
    def _link(part: Path, target: Path, digest: str, request: ChunkRequest) -> None:
        try:
            os.link(part, target)
        except FileExistsError:
            if not hmac.compare_digest(files.sha256_file(target), digest):
                raise Conflict(
                    f"chunk {request.chunk_number} of upload {request.upload_id} was already "
                    "received with different bytes"
                ) from None
        except FileNotFoundError:
            raise Gone(f"upload {request.upload_id} was removed while this chunk arrived") from None

    def _replay(
        self, done: dict[str, Any], manifest: Manifest, request: ChunkRequest, digest: str
    ) -> Receipt:
        stored = done.get("chunk_sha256") or []
        n = request.chunk_number
        if n < len(stored) and hmac.compare_digest(str(stored[n]), digest):
            state = self._done_state(manifest, done)
            return Receipt(state=state, replay=state.result)
        raise Conflict(
            f"upload {request.upload_id} is already complete and chunk {n} differs from the "
            "one analysed; use a new upload_id for another file"
        )

    # -- status ----------------------------------------------------------------------

    def status(self, user_id: int, upload_id: str) -> UploadState:
        """The upload's progress (``received`` lets a client resume).

        Raises:
            NotFound: no such upload for this user (another user's is invisible).
            Gone: it expired or was discarded.
        """
        validate_upload_id(upload_id)
        directory = self._directory(user_id, upload_id)
        manifest = self._manifest(directory, upload_id)
        if manifest is None:
            raise NotFound(f"no upload {upload_id}")
        return self._state(directory, manifest)

    def _state(self, directory: Path, manifest: Manifest) -> UploadState:
        done = read_result(directory)
        if done is not None:
            return self._done_state(manifest, done)
        expires_at = (files.mtime(directory) or self._clock()) + self.settings.ttl_s
        received: list[int] = []
        size = 0
        for entry in os.scandir(directory):
            if entry.name.startswith(CHUNK_PREFIX):
                number = int(entry.name[len(CHUNK_PREFIX) :])
                try:
                    size += entry.stat().st_size
                except FileNotFoundError:  # removed by a concurrent completion
                    continue
                if number < manifest.total_chunks:
                    received.append(number)
        phase: Phase = "analysing" if self._claim_is_live(directory / CLAIM) else "receiving"
        return UploadState(
            upload_id=manifest.upload_id,
            total_chunks=manifest.total_chunks,
            filename=manifest.filename,
            received=tuple(sorted(received)),
            received_bytes=size,
            phase=phase,
            expires_at=expires_at,
        )

    def _done_state(self, manifest: Manifest, done: dict[str, Any]) -> UploadState:
        return UploadState(
            upload_id=manifest.upload_id,
            total_chunks=manifest.total_chunks,
            filename=manifest.filename,
            received=tuple(range(manifest.total_chunks)),
            received_bytes=int(done.get("size", 0)),
            phase="done",
            expires_at=float(done.get("completed_at", 0)) + self.settings.ttl_s,
            result=done.get("body"),
        )

    # -- finishing -------------------------------------------------------------------

    def assemble(self, claim: Claim, spool_dir: Path) -> Assembled:
        """Join the chunks in order into a new file in ``spool_dir``, streaming.

        Raises:
            Gone: a chunk disappeared (the upload was removed meanwhile).
            MediaTooLarge: the joined file exceeds its type's size limit.
            InsufficientStorage: the disk is full (nothing partial is kept).
        """
        spool_dir.mkdir(parents=True, exist_ok=True)
        path = spool_dir / f"{uuid.uuid4().hex}.upload"
        cap, what = self._max_total(claim.directory)
        whole = hashlib.sha256()
        digests: list[str] = []
        size = 0
        try:
            with out_of_space_is_retryable():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                out = os.fdopen(fd, "wb")
            with out, out_of_space_is_retryable():
                buffer = bytearray(COPY_BYTES)  # one small buffer, reused: flat memory
                view = memoryview(buffer)
                for n in range(claim.manifest.total_chunks):
                    part = hashlib.sha256()
                    with (claim.directory / chunk_name(n)).open("rb", buffering=0) as src:
                        while got := src.readinto(buffer):
                            size += got
                            if size > cap:
                                raise MediaTooLarge(f"the {what} exceeds the limit of {cap} bytes")
                            whole.update(view[:got])
                            part.update(view[:got])
                            out.write(view[:got])
                    digests.append(part.hexdigest())
        except FileNotFoundError:
            files.unlink_quietly(path)
            raise Gone(f"upload {claim.manifest.upload_id} was removed") from None
        except BaseException:
            files.unlink_quietly(path)
            raise
        spooled = SpooledFile(path=path, size=size, filename=claim.manifest.filename)
        return Assembled(file=spooled, sha256=whole.hexdigest(), chunk_sha256=tuple(digests))

    def complete(self, claim: Claim, assembled: Assembled, body: Any) -> None:
        """Record the analysis response, drop the chunks, release the claim."""
        done = {
            "body": body,
            "chunk_sha256": list(assembled.chunk_sha256),
            "size": assembled.file.size,
            "completed_at": self._clock(),
        }
        files.write_json(claim.directory / RESULT, done)
        os.utime(claim.directory / RESULT, (done["completed_at"], done["completed_at"]))
        for n in range(claim.manifest.total_chunks):
            files.unlink_quietly(claim.directory / chunk_name(n))
        self.release(claim)
