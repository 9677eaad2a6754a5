"""Job callbacks: POST the final status to ``callback_url``, signed, with retries.

Headers: ``X-Serve-App-Timestamp: <unix s>`` and
``X-Serve-App-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` keyed with
the job's ``callback_secret`` (returned once by ``POST /videoinfer/``). Receivers check
the signature with :func:`verify_signature` and refuse stale timestamps. The URL goes
through the same SSRF guard as input URLs; redirects are not followed. A 2xx answer
ends delivery; 4xx (except 408 and 429) ends it as failed; anything else is retried
with exponential backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from serve_app.jobs.context import JobsContext
from serve_app.jobs.store.records import JobRecord
from serve_app.net.fetch import FetchFailed, SafeHttp
from serve_app.net.netguard import UrlRefused

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Serve-App-Signature"
TIMESTAMP_HEADER = "X-Serve-App-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """A receiver's check: right signature and a timestamp within ``tolerance_s``."""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


async def deliver(
    http: SafeHttp,
    url: str,
    secret: str,
    payload: dict[str, Any],
    *,
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """POST ``payload`` until a 2xx answer; False when every try failed."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    for attempt in range(attempts):
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        try:
            status = await asyncio.to_thread(http.post, url, body, headers)
        except UrlRefused as exc:
            logger.warning("callback to a refused URL: %s", exc.detail)
            return False
        except FetchFailed as exc:
            logger.info("callback try %d failed: %s", attempt + 1, exc.detail)
        else:
            if 200 <= status < 300:
                return True
            if 400 <= status < 500 and status not in (408, 429):
                logger.warning("callback refused with HTTP %d", status)
                return False
        if attempt + 1 < attempts:
            await sleep(backoff_s * 2**attempt)
    return False


async def send_callback(ctx: JobsContext, record: JobRecord, body: dict[str, Any]) -> None:
    """Deliver ``body`` to the job's callback URL and record the outcome."""
    assert record.callback_url and record.callback_secret
    delivered = await deliver(
        ctx.http,
        record.callback_url,
        record.callback_secret,
        body,
        attempts=ctx.jobs.callback_attempts,
        backoff_s=ctx.jobs.callback_backoff_s,
    )
    await asyncio.to_thread(
        ctx.store.set_callback_state, record.id, "delivered" if delivered else "failed"
    )
