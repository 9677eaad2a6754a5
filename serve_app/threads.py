"""Blocking work from async code that must finish even if its caller is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def run_to_completion(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread; if the caller is cancelled, ``fn`` still finishes.

    For the last database write of an operation (capture, release, record), which a
    client disconnecting must not cut in half.
    """
    task = asyncio.ensure_future(asyncio.to_thread(fn))
    return await asyncio.shield(task)
