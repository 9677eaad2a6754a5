"""Server-Sent Events of one summary job: chunks as they complete, then the outcome.

The stream reads the database (and, at the end, the results document), so it works
from any Ingress replica and survives a restart of the worker. Events:

- ``status``: the status (no result) whenever it changes;
- ``chunk``: one stored chunk (``id`` is its index), in index order, each once (a
  chunk that finishes before an earlier one waits for it);
- ``chapters`` and ``summary``: once the job has succeeded, after every chunk;
- ``done`` (succeeded) or ``error`` (failed, cancelled): the final status; the end.

A client reconnecting with ``Last-Event-ID: <n>`` gets the chunks after ``n``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from serve_app.jobs.store.records import JobRecord
from serve_app.jobs.store.tables import JobStatus
from serve_app.summaries.service import Summaries
from serve_app.summaries.status import stored_result, summary_status

#: Seconds between looks at the database, and between keep-alive comments.
POLL_S = 0.5
KEEPALIVE_S = 15.0


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One event in the text/event-stream format (data as one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"{head}event: {event}\ndata: {payload}\n\n"


async def summary_events(
    summaries: Summaries,
    load: Callable[[], JobRecord],
    last_event_id: int = -1,
    poll_s: float = POLL_S,
) -> AsyncIterator[str]:
    """The event stream of the job ``load`` reads (see the module docstring)."""
    jobs = summaries.jobs
    sent = last_event_id
    last_status: dict[str, Any] | None = None
    quiet = 0.0
    while True:
        record = await asyncio.to_thread(load)
        status = summary_status(jobs, summaries.settings, record, with_result=False)
        if status != last_status:
            yield sse("status", status)
            last_status, quiet = status, 0.0
        for part, payload in await asyncio.to_thread(jobs.store.parts, record.id, sent):
            if part != sent + 1:
                break  # an earlier chunk is still in flight: keep the order
            yield f"id: {part}\nevent: chunk\ndata: {payload}\n\n"
            sent, quiet = part, 0.0
        if record.status.finished:
            if record.status is JobStatus.SUCCEEDED and record.result_key:
                document = await asyncio.to_thread(stored_result, jobs, record)
                yield sse("chapters", document["chapters"])
                summary = {"summary": document["summary"]}
                if "summary_translation" in document:
                    summary["summary_translation"] = document["summary_translation"]
                yield sse("summary", summary)
                yield sse("done", status)
            else:
                yield sse("error", status)
            return
        await asyncio.sleep(poll_s)
        quiet += poll_s
        if quiet >= KEEPALIVE_S:
            yield ": keep-alive\n\n"
            quiet = 0.0
