"""Submitted batch jobs: polled until final, their charges booked, their results read.

One poller task walks the unfinished jobs every ``poll_interval_s`` during the
traffic and afterwards (the drain). A finished job books its ``credits_charged``;
a succeeded one has its results file downloaded and checked (parallel lists, one
entry per processed frame).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scripts.loadtest.client import Answer, Client
from scripts.loadtest.ledger import Account, Book

#: ``status`` of ``GET /videoinfer/``: 1 is queued or running, everything else final.
RUNNING = 1
SUCCEEDED, FAILED, CANCELLED = 0, 2, 3


@dataclass
class TrackedJob:
    job_id: str
    account: Account
    submitted_at: float
    status: int = RUNNING
    error_code: str | None = None
    credits_charged: int = 0
    finished_after_s: float | None = None


@dataclass
class JobTracker:
    """The run's jobs and the loop that polls them.

    Args:
        client: Sends the polls (kind ``job:status``) and downloads (``job:results``).
        book: Where finished jobs' charges go.
        poll_interval_s: Pause between two sweeps over the unfinished jobs.
    """

    client: Client
    book: Book
    poll_interval_s: float = 1.0
    jobs: dict[str, TrackedJob] = field(default_factory=dict)
    _polls: int = 0

    def add(self, job_id: str, account: Account) -> None:
        self.jobs[job_id] = TrackedJob(job_id, account, time.monotonic())

    @property
    def pending(self) -> list[TrackedJob]:
        return [j for j in self.jobs.values() if j.status == RUNNING]

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set and no job is left unfinished (cancel to give up)."""
        while True:
            await self.poll_once()
            if stop.is_set() and not self.pending:
                return
            await asyncio.sleep(self.poll_interval_s)

    async def poll_once(self) -> None:
        for job in self.pending:
            self._polls += 1
            # Every other poll authenticates with ?api_key= instead of a Bearer header.
            if self._polls % 2:
                answer = await self.client.call(
                    "job:status", "GET", "videoinfer/", token=job.account.token,
                    params={"job_id": job.job_id},
                )  # fmt: skip
            else:
                answer = await self.client.call(
                    "job:status", "GET", "videoinfer/",
                    params={"job_id": job.job_id, "api_key": job.account.token},
                )  # fmt: skip
            status = answer.field("status")
            if answer.ok and isinstance(status, int) and status != RUNNING:
                await self._finish(job, answer)

    async def _finish(self, job: TrackedJob, answer: Answer) -> None:
        job.status = int(answer.field("status"))
        job.error_code = answer.field("error_code")
        job.credits_charged = int(answer.field("credits_charged", 0) or 0)
        job.finished_after_s = time.monotonic() - job.submitted_at
        self.book.charge(job.account.username, job.credits_charged)
        if job.status == CANCELLED and job.credits_charged:
            self.client.recorder.anomaly(
                f"cancelled job {job.job_id} charged {job.credits_charged}"
            )
        if job.status == SUCCEEDED:
            await self._check_results(job, answer)

    async def _check_results(self, job: TrackedJob, status: Answer) -> None:
        url = status.field("output_signed_url")
        if not isinstance(url, str):
            self.client.recorder.anomaly(f"succeeded job {job.job_id} has no output_signed_url")
            return
        answer = await self.client.call("job:results", "GET", url)
        if not answer.ok:
            return
        problem = results_problem(answer.body, status.field("frames_done"), status.field("models"))
        if problem:
            self.client.recorder.anomaly(f"job {job.job_id} results: {problem}")

    def summary(self) -> dict[str, Any]:
        """Counts by final state, failure codes, and time from submit to final."""
        done = [j for j in self.jobs.values() if j.finished_after_s is not None]
        times = sorted(j.finished_after_s or 0.0 for j in done)
        return {
            "submitted": len(self.jobs),
            "succeeded": sum(j.status == SUCCEEDED for j in self.jobs.values()),
            "failed": sum(j.status == FAILED for j in self.jobs.values()),
            "failed_by_code": dict(
                Counter(j.error_code or "?" for j in self.jobs.values() if j.status == FAILED)
            ),
            "cancelled": sum(j.status == CANCELLED for j in self.jobs.values()),
            "unfinished": [j.job_id for j in self.pending],
            "credits_charged": sum(j.credits_charged for j in self.jobs.values()),
            "max_submit_to_final_s": round(times[-1], 1) if times else 0.0,
            "median_submit_to_final_s": round(times[len(times) // 2], 1) if times else 0.0,
        }


def results_problem(doc: Any, frames_done: Any, models: Any) -> str:
    """What is wrong with a results file (``""`` when nothing is)."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    offsets = doc.get("frame_offsets")
    if not isinstance(offsets, list) or len(offsets) != frames_done:
        got = len(offsets) if isinstance(offsets, list) else offsets
        return f"{got} frame_offsets for frames_done={frames_done}"
    names = [m.get("model_id") for m in models or [] if isinstance(m, dict)]
    for name in ["time_offsets", *names]:
        values = doc.get(name)
        if not isinstance(values, list) or len(values) != len(offsets):
            return f"{name!r} does not have {len(offsets)} entries"
    return ""
