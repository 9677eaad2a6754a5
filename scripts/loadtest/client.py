"""One logical HTTP call of the load test, recorded, with bounded 503 retries.

The 503 rule: a 503 (backpressure or a backend at capacity) is retried after its
``Retry-After`` (capped at ``RetryPolicy.max_wait_s``; 1 s when absent), at most
``RetryPolicy.max_retries`` times and never past the hard stop. A request that
succeeds on a retry counts as answered (its 503s are reported as *503 retried*); one
that is still 503 after its retries is a failure like any other 5xx. Retrying is safe
for paid requests: a 503 means the work was not done and nothing was charged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from scripts.loadtest.config import RetryPolicy
from scripts.loadtest.stats import NO_ANSWER, Recorder

#: Response header a replayed ``Idempotency-Key`` request carries.
REPLAY_HEADER = "Idempotent-Replayed"
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback_url(url: str) -> bool:
    """True for ``http(s)`` URLs whose host is ``localhost``, 127.0.0.0/8 or ``::1``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(url: str) -> str:
    """``url`` itself. Raises ValueError unless it points at this machine."""
    if not is_loopback_url(url):
        raise ValueError(f"the load test only talks to loopback (127.0.0.1, ::1, localhost): {url}")
    return url


@dataclass(frozen=True)
class Answer:
    """What came back: ``status`` 0 when nothing did (``error`` says why)."""

    status: int
    body: Any = None
    headers: httpx.Headers | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def replayed(self) -> bool:
        return self.headers is not None and self.headers.get(REPLAY_HEADER) == "true"

    def field(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default) if isinstance(self.body, dict) else default


def retry_after_s(headers: httpx.Headers, default: float = 1.0) -> float:
    """``Retry-After`` in seconds (only the delta-seconds form; else ``default``)."""
    value = headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


class Client:
    """Sends requests to one service and records each in a :class:`Recorder`.

    Args:
        http: An ``httpx.AsyncClient`` whose ``base_url`` is the service's root.
        recorder: Where every request is counted.
        retry: The 503 policy.
        hard_stop: Monotonic time after which no retry waits are started.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        recorder: Recorder,
        retry: RetryPolicy,
        hard_stop: Callable[[], float] = lambda: float("inf"),
    ) -> None:
        self.http = http
        self.recorder = recorder
        self.retry = retry
        self._hard_stop = hard_stop

    async def call(
        self,
        kind: str,
        method: str,
        url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Answer:
        """Send ``method url`` (relative to the base URL, or absolute on loopback)."""
        if url.startswith(("http://", "https://")):
            require_loopback(url)
        sent_headers = dict(headers or {})
        if token is not None:
            sent_headers["Authorization"] = f"Bearer {token}"
        began = time.monotonic()
        seen_503 = 0
        while True:
            self.recorder.attempts += 1
            answer = await self._send(method, url, sent_headers, kwargs)
            if answer.status != 503 or answer.headers is None:
                break
            seen_503 += 1
            wait = min(retry_after_s(answer.headers), self.retry.max_wait_s)
            if seen_503 > self.retry.max_retries or time.monotonic() + wait > self._hard_stop():
                break
            await asyncio.sleep(wait)
        note = answer.error or _detail(answer)
        self.recorder.record(kind, answer.status, time.monotonic() - began, seen_503, note)
        return answer

    async def _send(
        self, method: str, url: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> Answer:
        try:
            response = await self.http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            return Answer(NO_ANSWER, error=f"{type(exc).__name__}: {exc}"[:200])
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:500]
        return Answer(response.status_code, body, response.headers)


def _detail(answer: Answer) -> str:
    detail = answer.field("detail")
    return str(detail)[:200] if detail is not None else ""
