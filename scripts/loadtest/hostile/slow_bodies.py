"""Connections that declare a large body, send a little of it, then stall or trickle.

Each *slot* keeps one such connection open for the whole run: when the service
answers or closes it, the slot records how (status, or ``closed``/``reset``) and how
long it was held, waits a moment (at least the answer's ``Retry-After``) and opens
the next. Half the slots stall after ``first_bytes``; the other half trickle one byte
every ``trickle_every_s``. Raw sockets, so nothing in the client buffers or times out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field

#: What a slot records when the connection ended without an HTTP status line.
CLOSED, RESET, HELD = "closed", "reset", "held to the end"
REOPEN_PAUSE_S = (1.0, 3.0)
BOUNDARY = "hostile15"


@dataclass
class SlowTally:
    """Outcomes of all slow connections of one kind (anonymous or authenticated)."""

    label: str
    opened: int = 0
    open_now: int = 0
    peak_open: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    held_s: list[float] = field(default_factory=list)
    #: Longest a connection stayed open without the service ending it (cut by ``stop``).
    max_unanswered_s: float = 0.0

    def opening(self) -> None:
        self.opened += 1
        self.open_now += 1
        self.peak_open = max(self.peak_open, self.open_now)

    def ended(self, outcome: str, held_s: float) -> None:
        self.open_now -= 1
        self.outcomes[outcome] += 1
        if outcome == HELD:
            self.max_unanswered_s = max(self.max_unanswered_s, held_s)
        else:
            self.held_s.append(held_s)

    @property
    def max_held_s(self) -> float:
        """Longest a connection stayed open before the service answered or closed it."""
        return max(self.held_s, default=0.0)


def request_head(host: str, port: int, path: str, declared: int, token: str | None) -> bytes:
    """The request line and headers of a multipart POST declaring ``declared`` bytes."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {declared}",
    ]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def first_part(size: int) -> bytes:
    """The first ``size`` bytes of a multipart body with one file field."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        'filename="slow.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    ).encode()
    return (head + b"\0" * size)[:size]


def parse_status(head: bytes) -> tuple[str, float]:
    """``(status, retry_after_s)`` of a response head (``CLOSED`` when empty)."""
    if not head:
        return CLOSED, 0.0
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    status = parts[1] if len(parts) > 1 and parts[1].isdigit() else "garbled"
    retry = 0.0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "retry-after":
            with contextlib.suppress(ValueError):
                retry = float(value.strip())
    return status, retry


async def _one_connection(
    host: str, port: int, head: bytes, body: bytes, trickle_s: float | None
) -> tuple[str, float]:
    """Open, send, stall or trickle until the service answers or closes."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head + body)
        await writer.drain()

        async def trickle() -> None:
            while trickle_s is not None:
                await asyncio.sleep(trickle_s)
                writer.write(b"\0")
                await writer.drain()

        dripping = asyncio.create_task(trickle())
        try:
            answer = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            answer = exc.partial
        finally:
            dripping.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await dripping
        return parse_status(answer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def hold_slot(
    tally: SlowTally,
    stop: asyncio.Event,
    *,
    host: str,
    port: int,
    path: str,
    declared: int,
    first_bytes: int,
    token: str | None,
    trickle_s: float | None,
    rng: random.Random,
) -> None:
    """Keep one slow connection open until ``stop``; reopen it whenever it ends."""
    head = request_head(host, port, path, declared, token)
    body = first_part(first_bytes)
    while not stop.is_set():
        began = time.monotonic()
        tally.opening()
        connection = asyncio.ensure_future(_one_connection(host, port, head, body, trickle_s))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({connection, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (connection, stopped):
                task.cancel()
            await asyncio.gather(connection, stopped, return_exceptions=True)
        outcome, retry = _outcome(connection)
        tally.ended(outcome, time.monotonic() - began)
        pause = max(retry, rng.uniform(*REOPEN_PAUSE_S))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


def _outcome(connection: asyncio.Future[tuple[str, float]]) -> tuple[str, float]:
    if connection.cancelled():
        return HELD, 0.0
    error = connection.exception()
    if error is None:
        return connection.result()
    if isinstance(error, (ConnectionError, OSError)):
        return RESET, 0.0
    raise error
