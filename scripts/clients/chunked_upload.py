"""Client for chunked uploads: send a file to ``POST /api/analyze`` in chunks, resumably.

It asks ``GET /api/uploads/{upload_id}`` which chunks the server already has and
sends only the missing ones (the last of them returns the analysis). Network errors,
408, 429 and 5xx are retried with exponential backoff (``Retry-After`` honoured);
if the last chunk's answer is lost while the server analyses, the retry gets 409
and the client polls the upload's status for the result. The default upload id is
derived from the file's path, size and modification time, so running the same
command again resumes. Uses only httpx; ``scripts/upload_client.py`` is the CLI.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

MIB = 1024 * 1024
DEFAULT_CHUNK_BYTES = 8 * MIB
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]


class UploadError(Exception):
    """The server refused the upload (or retries ran out)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadOptions:
    """How to upload and what to ask.

    Attributes:
        fields: extra form fields sent with every chunk (``prompt``, ``model_path``,
            ``interval``); the request with the last missing chunk runs the analysis.
        final_timeout_s: how long the last chunk (and polling) may wait for the analysis.
    """

    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    upload_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    retries: int = 6
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    chunk_timeout_s: float = 120.0
    final_timeout_s: float = 900.0
    poll_interval_s: float = 2.0


def default_upload_id(path: Path, chunk_bytes: int) -> str:
    """Stable for the same file and chunk size, so a rerun resumes."""
    st = path.stat()
    key = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{chunk_bytes}"
    return "up-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def total_chunks_for(size: int, chunk_bytes: int) -> int:
    return max(1, math.ceil(size / chunk_bytes))


def read_chunk(path: Path, number: int, chunk_bytes: int) -> bytes:
    with path.open("rb") as f:
        f.seek(number * chunk_bytes)
        return f.read(chunk_bytes)


class ProgressBar:
    """A one-line progress bar on a text stream (``\\r`` updates on a terminal)."""

    def __init__(self, total_bytes: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(1, total_bytes)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self._start = time.monotonic()
        self._last_line = -1.0

    def update(self, done_bytes: int) -> None:
        self.done = done_bytes
        fraction = min(1.0, done_bytes / self.total)
        tty = self.stream.isatty()
        if not tty and fraction < 1 and fraction - self._last_line < 0.1:
            return
        self._last_line = fraction
        filled = round(fraction * self.width)
        rate = done_bytes / MIB / max(1e-6, time.monotonic() - self._start)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% "
            f"{done_bytes / MIB:.1f}/{self.total / MIB:.1f} MiB {rate:.1f} MiB/s"
        )
        self.stream.write(("\r" + line) if tty else (line + "\n"))
        self.stream.flush()

    def note(self, message: str) -> None:
        self.stream.write(("\n" if self.stream.isatty() else "") + message + "\n")
        self.stream.flush()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)


def _retry_after(response: httpx.Response | None, fallback: float) -> float:
    if response is not None:
        try:
            return max(fallback, float(response.headers.get("retry-after", "")))
        except ValueError:
            pass
    return fallback


class ChunkUploader:
    """Uploads one file through ``client`` (whose ``base_url`` is the service root)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        options: UploadOptions | None = None,
        progress: ProgressBar | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.options = options or UploadOptions()
        self.progress = progress
        self._sleep = sleep

    async def status(self, upload_id: str) -> dict[str, Any] | None:
        """The server's view of the upload, or None if it has none."""
        response = await self._request("GET", f"api/uploads/{upload_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise UploadError(_detail(response), response.status_code)
        body: dict[str, Any] = response.json()
        return body

    async def upload(self, path: Path) -> dict[str, Any]:
        """Send the missing chunks of ``path``; return the analysis response body."""
        opts = self.options
        size = (await asyncio.to_thread(path.stat)).st_size
        total = total_chunks_for(size, opts.chunk_bytes)
        upload_id = opts.upload_id
        if not upload_id:
            upload_id = await asyncio.to_thread(default_upload_id, path, opts.chunk_bytes)
        have: set[int] = set()
        known = await self.status(upload_id)
        if known is not None:
            if known["total_chunks"] != total:
                raise UploadError(
                    f"upload {upload_id} was started with {known['total_chunks']} chunks, "
                    f"not {total}; use the same chunk size or another upload id"
                )
            if known.get("result"):
                return dict(known["result"])
            have = set(known["received_chunks"])
        missing = [n for n in range(total) if n not in have] or [total - 1]
        sent = sum(min(opts.chunk_bytes, size - n * opts.chunk_bytes) for n in have)
        if self.progress is not None:
            self.progress.update(sent)
        for index, number in enumerate(missing):
            last = index == len(missing) - 1
            data = await asyncio.to_thread(read_chunk, path, number, opts.chunk_bytes)
            body = await self._send_chunk(path.name, upload_id, number, total, data, last)
            if number not in have:
                sent += len(data)
            if self.progress is not None:
                self.progress.update(sent)
            if "result" in body:
                return body
        raise UploadError(f"upload {upload_id}: every chunk was sent but no analysis came back")

    async def _send_chunk(
        self, name: str, upload_id: str, number: int, total: int, data: bytes, last: bool
    ) -> dict[str, Any]:
        fields = {
            **self.options.fields,
            "upload_id": upload_id,
            "chunk_number": str(number),
            "total_chunks": str(total),
            "filename": name,
            "chunk_sha256": hashlib.sha256(data).hexdigest(),
        }
        timeout = self.options.final_timeout_s if last else self.options.chunk_timeout_s
        response = await self._request(
            "POST", "api/analyze", data=fields, files={"file": (name, data)}, timeout=timeout
        )
        if response.status_code == 409 and last and "being analysed" in _detail(response):
            return await self._wait_for_result(upload_id)
        if response.status_code != 200:
            raise UploadError(f"chunk {number}: {_detail(response)}", response.status_code)
        body: dict[str, Any] = response.json()
        return body

    async def _wait_for_result(self, upload_id: str) -> dict[str, Any]:
        """Poll the status while another request (our lost first try) analyses."""
        deadline = time.monotonic() + self.options.final_timeout_s
        while time.monotonic() < deadline:
            known = await self.status(upload_id)
            if known is None:
                raise UploadError(f"upload {upload_id} disappeared while it was analysed")
            if known.get("result"):
                return dict(known["result"])
            if known.get("state") != "analysing":
                raise UploadError(f"upload {upload_id}: the analysis failed; run again to retry")
            await self._sleep(self.options.poll_interval_s)
        raise UploadError(f"upload {upload_id}: no result within {self.options.final_timeout_s} s")

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on network errors, 408, 429 and 5xx."""
        delay = self.options.backoff_s
        for attempt in range(self.options.retries + 1):
            response: httpx.Response | None = None
            try:
                response = await self.client.request(method, url, **kwargs)
                if response.status_code not in RETRY_STATUSES:
                    return response
                problem = f"HTTP {response.status_code}: {_detail(response)}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt == self.options.retries:
                if response is not None:
                    return response
                raise UploadError(f"{method} {url} failed: {problem}")
            wait = min(self.options.max_backoff_s, _retry_after(response, delay))
            if self.progress is not None:
                self.progress.note(f"retrying in {wait:.1f} s ({problem})")
            await self._sleep(wait)
            delay = min(self.options.max_backoff_s, delay * 2)
        raise AssertionError("unreachable")
