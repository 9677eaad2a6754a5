"""The paid analysis of one spooled file: probe, charge, describe, record.

Shared by every way media reaches ``POST /api/analyze`` (one request, chunks, an
admin's ``file_path``), so each is validated and charged the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from serve_app.accounts.charging import charge
from serve_app.accounts.context import AccountsContext
from serve_app.accounts.idempotency import file_sha256, fingerprint
from serve_app.accounts.users import User
from serve_app.analysis.describe import describe, prepare
from serve_app.analysis.params import AnalyzeParams, CheckedParams
from serve_app.analysis.settings import AnalysisSettings
from serve_app.pipeline.protocol import Pipeline
from serve_app.pipeline.speech import AudioMode, transcript_report
from serve_app.speech.backend import SpeechBackend
from serve_app.storage.spool import SpooledFile


@dataclass(frozen=True)
class ChargedResult:
    """The response body (``result``, ``tokens_used``, ``remaining_tokens``).

    Attributes:
        replayed: the stored first response of a repeated request; nothing ran and
            nothing was charged this time.
    """

    body: Any
    status_code: int = 200
    replayed: bool = False


async def analyze_charged(
    pipeline: Pipeline,
    accounts: AccountsContext,
    settings: AnalysisSettings,
    user: User,
    upload: SpooledFile,
    params: AnalyzeParams,
    checked: CheckedParams,
    *,
    idempotency_key: str | None = None,
    request_id: str = "",
    sha256: str | None = None,
    speech: SpeechBackend | None = None,
) -> ChargedResult:
    """Probe ``upload`` (no credits yet), then charge and describe it.

    Args:
        params: the parameters as sent (they are part of the ``Idempotency-Key``
            fingerprint); ``checked`` is their checked form.
        sha256: the file's digest when the caller already has it. Without it the file
            is hashed only when an ``Idempotency-Key`` needs the fingerprint.
        speech: the speech backend ``checked.audio == transcribe`` needs.

    Raises:
        UnsupportedMedia, MediaTooLarge, MediaRejected: before any credit is reserved.
        InsufficientCredits, Conflict, IdempotencyKeyReused: from the charge.
        BackendUnavailable, GenerationFailed: the reservation is released.
    """
    prepared = await prepare(checked, upload, settings)
    request_fp = ""
    if idempotency_key is not None:
        digest = sha256 or await asyncio.to_thread(file_sha256, upload.path)
        # ``audio`` joins the fingerprint only when set, so older keys stay valid.
        audio = () if checked.audio is AudioMode.OFF else (checked.audio.value,)
        request_fp = fingerprint(
            "POST /api/analyze", digest, params.prompt, params.model, str(params.interval), *audio
        )
    async with charge(
        accounts, user, idempotency_key=idempotency_key, fingerprint=request_fp
    ) as bill:
        if bill.replay is not None:
            return ChargedResult(bill.replay.body, bill.replay.status_code, replayed=True)
        with accounts.in_flight.track():
            outcome = await describe(
                pipeline,
                upload,
                prepared,
                settings,
                request_id=request_id,
                speech=speech,
                audio=checked.audio,
            )
        body = {
            "result": outcome.text,
            "tokens_used": bill.cost,
            "remaining_tokens": bill.remaining,
        }
        if outcome.video is not None:  # an added key: the documented shape stays as it was
            body["sampling"] = outcome.video.report()
        if outcome.audio is not None:  # added with audio=transcribe only
            body["transcript"] = transcript_report(outcome.audio)
        bill.record(body)
    return ChargedResult(body)
