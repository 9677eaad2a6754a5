"""Rounds of parallel large uploads from one user, each billed exactly once.

Every upload is ``POST /api/analyze`` of a valid MP4 padded to ``upload_bytes`` with
an ``Idempotency-Key``. Refusals that promise nothing ran (429 and 503 with
``Retry-After``, 409 while the key is still in flight) and lost answers (the Ingress
killed mid-request) are retried with the same key until the round's deadline, so
the key's one success (fresh or replayed) is what the book charges. A round starts
when the previous one has finished, until ``stop``.
"""

from __future__ import annotations

import asyncio
import struct
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from scripts.loadtest.client import Client, retry_after_s
from scripts.loadtest.ledger import Account, Book
from scripts.loadtest.media import MediaFile
from scripts.loadtest.stats import NO_ANSWER

#: 5xx too: the key makes a retry safe (a replay if the lost attempt was charged).
RETRYABLE = frozenset({NO_ANSWER, 409, 429, 500, 502, 503, 504})
#: How long one upload keeps retrying (after ``stop``, too, so the book stays exact).
UPLOAD_DEADLINE_S = 180.0
KIND = "upload:large"


def padded_video(video: MediaFile, size: int) -> MediaFile:
    """``video`` followed by an MP4 ``free`` box, ``size`` bytes in all (still valid)."""
    pad = size - len(video.data)
    if pad < 8:
        return video
    box = struct.pack(">I4s", pad, b"free") + bytes(pad - 8)
    return MediaFile(f"large-{size // (1024 * 1024)}mb.mp4", video.data + box, "video/mp4")


@dataclass
class UploadTally:
    """Outcomes of the large uploads: attempts by status, finished uploads, latencies."""

    rounds: int = 0
    attempts: Counter[int] = field(default_factory=Counter)
    succeeded: int = 0
    gave_up: Counter[int] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)


async def upload_once(
    client: Client, account: Account, book: Book, video: MediaFile, tally: UploadTally
) -> None:
    """One upload, retried under its key until it succeeds or fails for good."""
    key = f"lt-big-{uuid.uuid4().hex}"
    began = time.monotonic()
    status = NO_ANSWER
    try:
        while time.monotonic() - began < UPLOAD_DEADLINE_S:
            answer = await client.call(
                KIND, "POST", "api/analyze", token=account.token,
                headers={"Idempotency-Key": key},
                files={"file": video.part()}, data={"interval": "10"},
            )  # fmt: skip
            status = answer.status
            tally.attempts[status] += 1
            if answer.ok:
                book.charge(account.username, int(answer.field("tokens_used", 0) or 0))
                tally.succeeded += 1
                tally.latencies_s.append(time.monotonic() - began)
                return
            if status not in RETRYABLE:
                break
            wait = retry_after_s(answer.headers) if answer.headers is not None else 1.0
            await asyncio.sleep(min(max(wait, 0.5), 10.0))
    except asyncio.CancelledError:
        book.lost(account.username)
        raise
    tally.gave_up[status] += 1
    if status in (NO_ANSWER, 409):
        book.lost(account.username)


async def upload_rounds(
    client: Client,
    account: Account,
    book: Book,
    video: MediaFile,
    parallel: int,
    stop: asyncio.Event,
    tally: UploadTally,
) -> None:
    """Rounds of ``parallel`` uploads at once until ``stop`` (a round is never cut)."""
    while not stop.is_set() and parallel > 0:
        tally.rounds += 1
        await asyncio.gather(
            *(upload_once(client, account, book, video, tally) for _ in range(parallel))
        )
