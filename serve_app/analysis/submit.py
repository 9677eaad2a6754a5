"""``POST /api/analyze`` as it arrives: one file, one chunk of many, or an admin's file_path.

The parameters are checked once, first, whichever way the media arrives; the media
ends as one spooled file that goes through the same probe (before any credit is
reserved) and the same charged analysis (:func:`serve_app.analysis.charged.analyze_charged`).

Chunked uploads: a non-final chunk returns the upload's :class:`UploadState`; the
request that stores the last missing chunk assembles the parts and runs the
analysis with its own ``prompt``/``model_path``/``interval``. When two final chunks
race, one request claims the upload and analyses it; the other gets 409 while the
analysis runs and the first response (replayed, not charged) once it has finished.
If the media is invalid, the upload is discarded (later chunks: 410); if the
analysis fails otherwise (backend down, no credits), its chunks are kept and
re-sending any chunk retries it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User
from serve_app.analysis.charged import ChargedResult, analyze_charged
from serve_app.analysis.params import AnalyzeParams, CheckedParams, check_params
from serve_app.analysis.settings import AnalysisSettings
from serve_app.errors import (
    Conflict,
    InvalidRequest,
    MediaRejected,
    MediaTooLarge,
    PermissionDenied,
    UnsupportedMedia,
)
from serve_app.pipeline.protocol import Pipeline
from serve_app.speech.backend import SpeechBackend
from serve_app.storage.spool import AsyncReadable, SpooledFile, spool_upload, spooled
from serve_app.threads import run_to_completion
from serve_app.uploads.chunks import ChunkStore
from serve_app.uploads.names import clean_filename
from serve_app.uploads.server_paths import copy_server_file
from serve_app.uploads.state import Assembled, ChunkRequest, Claim, UploadState

logger = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
#: Errors that mean the assembled file itself is bad: the upload is discarded.
MEDIA_ERRORS = (UnsupportedMedia, MediaTooLarge, MediaRejected)


@dataclass(frozen=True)
class AnalysisServices:
    """What the use case needs; built per request from the app's context."""

    pipeline: Pipeline
    settings: AnalysisSettings
    accounts: AccountsContext
    store: ChunkStore
    #: Speech recognition (``audio=transcribe``); ``None`` when the server has none.
    speech: SpeechBackend | None = None


@dataclass(frozen=True)
class AnalyzeForm:
    """The fields of one ``POST /api/analyze`` request."""

    params: AnalyzeParams
    file: AsyncReadable | None = None
    #: The name of ``file`` (one-request uploads) or of the whole upload (chunks).
    filename: str | None = None
    file_path: str | None = None
    upload_id: str | None = None
    chunk_number: int | None = None
    total_chunks: int | None = None
    chunk_sha256: str | None = None
    idempotency_key: str | None = None
    request_id: str = ""


async def submit_analysis(
    services: AnalysisServices, user: User, form: AnalyzeForm
) -> ChargedResult | UploadState:
    """Analyse the request's media, or store its chunk and report progress."""
    sweep_if_due(services.store)
    if form.file_path is not None:
        if form.file is not None or form.upload_id is not None:
            raise InvalidRequest("send either file (or chunks) or file_path, not both")
        if not user.is_admin:
            raise PermissionDenied("file_path is for administrators only; upload the file instead")
        checked = check_params(services.pipeline, form.params, services.settings, services.speech)
        return await _analyze_server_file(services, user, form, checked, form.file_path)
    if form.upload_id is not None:
        return await _receive_chunk(services, user, form, form.upload_id)
    if any(v is not None for v in (form.chunk_number, form.total_chunks, form.chunk_sha256)):
        raise InvalidRequest("chunk_number, total_chunks and chunk_sha256 need an upload_id")
    if form.file is None:
        raise InvalidRequest(
            "file is required (or upload_id with chunk fields; admins may send file_path)"
        )
    settings = services.settings
    checked = check_params(services.pipeline, form.params, settings, services.speech)
    async with spooled(
        form.file, settings.spool_dir, clean_filename(form.filename), settings.max_request_bytes
    ) as upload:
        return await _charged(services, user, form, checked, upload)


async def upload_status(store: ChunkStore, user: User, upload_id: str) -> UploadState:
    """``GET /api/uploads/{upload_id}`` (NotFound for another user's upload)."""
    sweep_if_due(store)
    return await asyncio.to_thread(store.status, user.id, upload_id)


async def _charged(
    services: AnalysisServices,
    user: User,
    form: AnalyzeForm,
    checked: CheckedParams,
    upload: SpooledFile,
    sha256: str | None = None,
) -> ChargedResult:
    return await analyze_charged(
        services.pipeline,
        services.accounts,
        services.settings,
        user,
        upload,
        form.params,
        checked,
        idempotency_key=form.idempotency_key,
        request_id=form.request_id,
        sha256=sha256,
        speech=services.speech,
    )


async def _analyze_server_file(
    services: AnalysisServices,
    user: User,
    form: AnalyzeForm,
    checked: CheckedParams,
    file_path: str,
) -> ChargedResult:
    settings = services.settings
    roots, spool_dir = settings.allowed_media_roots, settings.spool_dir
    upload = await asyncio.to_thread(copy_server_file, file_path, roots, settings.media, spool_dir)
    try:
        return await _charged(services, user, form, checked, upload)
    finally:
        upload.discard()


async def _receive_chunk(
    services: AnalysisServices, user: User, form: AnalyzeForm, upload_id: str
) -> ChargedResult | UploadState:
    if form.file is None or form.chunk_number is None or form.total_chunks is None:
        raise InvalidRequest("a chunk needs upload_id, chunk_number, total_chunks and file")
    if form.chunk_sha256 is not None and not _SHA256.fullmatch(form.chunk_sha256):
        raise InvalidRequest("chunk_sha256 must be 64 hexadecimal digits")
    store = services.store
    request = ChunkRequest(
        upload_id=upload_id,
        chunk_number=form.chunk_number,
        total_chunks=form.total_chunks,
        filename=clean_filename(form.filename),
    )
    store.check_request(request)
    checked = check_params(services.pipeline, form.params, services.settings, services.speech)
    part = await _spool_chunk(form.file, store, user, request.chunk_number)
    try:
        receipt = await asyncio.to_thread(
            store.put_chunk, user.id, request, part.path, form.chunk_sha256
        )
    finally:
        part.discard()
    if receipt.replay is not None:
        return ChargedResult(receipt.replay, replayed=True)
    if not receipt.state.complete:
        return receipt.state
    return await _finish(services, user, form, checked, upload_id)


async def _spool_chunk(
    source: AsyncReadable, store: ChunkStore, user: User, number: int
) -> SpooledFile:
    limit = store.settings.max_chunk_bytes
    try:
        return await spool_upload(source, store.staging_dir(user.id), "", limit)
    except MediaTooLarge:
        raise MediaTooLarge(f"chunk {number} is larger than the limit of {limit} bytes") from None
    except MediaRejected:
        raise InvalidRequest(f"chunk {number} is empty") from None


async def _finish(
    services: AnalysisServices,
    user: User,
    form: AnalyzeForm,
    checked: CheckedParams,
    upload_id: str,
) -> ChargedResult:
    """Assemble and analyse a complete upload, once, whoever else is trying."""
    store = services.store
    claim = await asyncio.to_thread(store.claim, user.id, upload_id)
    if claim is None:
        state = await asyncio.to_thread(store.status, user.id, upload_id)
        if state.result is not None:
            return ChargedResult(state.result, replayed=True)
        raise Conflict(
            f"upload {upload_id} is being analysed by another request; "
            f"GET /api/uploads/{upload_id} shows the result when it is done"
        )
    try:
        assembled = await asyncio.to_thread(store.assemble, claim, services.settings.spool_dir)
        try:
            result = await _charged(services, user, form, checked, assembled.file, assembled.sha256)
        finally:
            assembled.file.discard()
    except BaseException as exc:
        failure = exc
        await run_to_completion(lambda: _give_up(store, claim, failure))
        raise
    await run_to_completion(lambda: _record(store, claim, assembled, result))
    return result


def _give_up(store: ChunkStore, claim: Claim, exc: BaseException) -> None:
    if isinstance(exc, MEDIA_ERRORS):
        store.discard(claim, exc.detail)
    else:
        store.release(claim)


def _record(store: ChunkStore, claim: Claim, assembled: Assembled, result: ChargedResult) -> None:
    store.complete(claim, assembled, result.body)


def sweep_if_due(store: ChunkStore) -> None:
    """Start :meth:`ChunkStore.cleanup` in a worker thread when its interval has passed."""
    if store.cleanup_due():
        asyncio.get_running_loop().run_in_executor(None, _sweep, store)


def _sweep(store: ChunkStore) -> None:
    try:
        expired = store.cleanup()
        if expired:
            logger.info("removed %d expired uploads", expired)
    except Exception:
        logger.warning("upload cleanup failed; will retry", exc_info=True)
