"""The core of the load test: workers until the deadline, drain the jobs, reconcile.

:func:`run_load_test` needs a running service on loopback and tokens of its users
(see :class:`Target`); :mod:`scripts.loadtest.service` starts one, tests bring their
own. Time is bounded: ``duration_s`` of traffic, ``grace_s`` for operations still
running at the deadline (then they are cancelled and their outcome is unknown),
``drain_timeout_s`` for the jobs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from scripts.loadtest.client import Client, require_loopback
from scripts.loadtest.config import LoadConfig
from scripts.loadtest.jobs import JobTracker
from scripts.loadtest.ledger import Account, Book
from scripts.loadtest.media import MediaSet, make_media
from scripts.loadtest.reconcile import reconcile
from scripts.loadtest.report import Report
from scripts.loadtest.scenarios import Accounts, Traffic
from scripts.loadtest.stats import Recorder

PROGRESS_EVERY_S = 15.0
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Target:
    """The service under test.

    Attributes:
        base_url: Its root (route prefix included), on loopback.
        accounts: The users to act as (usernames are looked up with ``GET /api/me``).
        database_url: The service's database, for the ledger checks; ``None``: API only.
        story_cost: Credits one story costs (``story.cost``; responses do not say).
        settings: The app's settings overrides, when this process deployed it.
    """

    base_url: str
    accounts: Accounts
    database_url: str | None = None
    story_cost: int = 10
    settings: Mapping[str, Any] | None = None


def _stderr(line: str) -> None:
    print(f"[load] {line}", file=sys.stderr, flush=True)


async def run_load_test(
    target: Target,
    config: LoadConfig,
    media: MediaSet | None = None,
    log: Callable[[str], None] = _stderr,
    recorder: Recorder | None = None,
    book: Book | None = None,
) -> Report:
    """Run the mixed traffic against ``target`` and return the report.

    ``recorder`` and ``book`` may be shared with other traffic of the same run.
    """
    base = require_loopback(target.base_url).rstrip("/") + "/"
    if media is None:
        media = await asyncio.to_thread(make_media)
    recorder = recorder if recorder is not None else Recorder()
    book = book if book is not None else Book()
    rng = random.Random(config.seed)
    limits = httpx.Limits(max_connections=2 * config.concurrency + 4)
    hard_stop = float("inf")
    started_utc = dt.datetime.now(dt.UTC)
    async with httpx.AsyncClient(
        base_url=base, timeout=config.request_timeout_s, limits=limits
    ) as http:
        client = Client(http, recorder, config.retry, hard_stop=lambda: hard_stop)
        await wait_ready(http, log)
        accounts = await open_accounts(client, target.accounts, book)
        tracker = JobTracker(client, book, config.poll_interval_s)
        traffic = Traffic(client, media, accounts, config, book, tracker, rng, target.story_cost)
        stop = asyncio.Event()
        poller = asyncio.create_task(tracker.run(stop))
        began = time.monotonic()
        deadline = began + config.duration_s
        hard_stop = deadline + config.grace_s
        log(
            f"traffic for {config.duration_s:g} s at concurrency {config.concurrency} "
            f"(at most {config.max_requests} requests) against {base}"
        )
        workers = [
            asyncio.create_task(_worker(traffic, rng, config, recorder, deadline))
            for _ in range(config.concurrency)
        ]
        progress = asyncio.create_task(_progress(recorder, tracker, began, log))
        _, late = await asyncio.wait(workers, timeout=config.duration_s + config.grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        traffic_s = time.monotonic() - began
        stopped_by = "request budget" if recorder.attempts >= config.max_requests else "time"
        if late:
            recorder.anomaly(f"{len(late)} operations cut off after the grace period")
        log(f"traffic done after {traffic_s:.0f} s; draining {len(tracker.pending)} jobs")
        stop.set()
        drained_at = time.monotonic()
        try:
            await asyncio.wait_for(poller, config.drain_timeout_s)
        except TimeoutError:
            log(f"{len(tracker.pending)} jobs still unfinished after {config.drain_timeout_s} s")
        progress.cancel()
        drain_s = time.monotonic() - drained_at
        reconciliation = await reconcile(
            client, accounts.all(), book, tracker, target.database_url, started_utc
        )
    return Report(
        config=config,
        base_url=base,
        started_utc=started_utc.strftime("%Y-%m-%d %H:%M:%S"),
        traffic_s=traffic_s,
        drain_s=drain_s,
        stopped_by=stopped_by,
        recorder=recorder,
        jobs=tracker.summary(),
        reconciliation=reconciliation,
    )


async def wait_ready(http: httpx.AsyncClient, log: Callable[[str], None]) -> None:
    """Wait (bounded) until ``GET /readyz`` answers 200. Raises RuntimeError."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        try:
            response = await http.get("readyz")
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        await asyncio.sleep(1.0)
    raise RuntimeError(f"the service is not ready after {READY_TIMEOUT_S:g} s: {last}")


async def open_accounts(client: Client, accounts: Accounts, book: Book) -> Accounts:
    """Look up every account (``GET /api/me``): its username and opening balance."""

    async def resolve(account: Account | None) -> Account | None:
        if account is None:
            return None
        answer = await client.call("reconcile:me", "GET", "api/me", token=account.token)
        if not answer.ok:
            raise RuntimeError(f"GET /api/me as {account.role}: {answer.status} {answer.body}")
        username = str(answer.field("username"))
        book.open(username, int(answer.field("balance")), bool(answer.field("is_admin")))
        return replace(account, username=username)

    payer = await resolve(accounts.payer)
    assert payer is not None
    names = {payer.username}
    others = [await resolve(accounts.drained), await resolve(accounts.admin)]
    for other in others:
        if other is not None and other.username in names:
            raise RuntimeError(f"{other.role} and another role are the same user")
        if other is not None:
            names.add(other.username)
    return Accounts(payer=payer, drained=others[0], admin=others[1])


async def _worker(
    traffic: Traffic,
    rng: random.Random,
    config: LoadConfig,
    recorder: Recorder,
    deadline: float,
) -> None:
    operations = [op for op, weight in config.mix.items() if weight > 0]
    weights = [config.mix[op] for op in operations]
    while time.monotonic() < deadline and recorder.attempts < config.max_requests:
        operation = rng.choices(operations, weights)[0]
        if not traffic.available(operation):
            others = [op for op in operations if traffic.available(op)]
            if not others:
                await asyncio.sleep(config.poll_interval_s)
                continue
            operation = rng.choices(others, [config.mix[op] for op in others])[0]
        try:
            await traffic.run(operation)
        except Exception as exc:  # a bug of the load test itself: fail the run, go on
            where = traceback.format_exception(exc)[-2:]
            recorder.anomaly(f"load test error in {operation}: {exc!r} {''.join(where)}")


async def _progress(
    recorder: Recorder, tracker: JobTracker, began: float, log: Callable[[str], None]
) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        total = recorder.total()
        log(
            f"{time.monotonic() - began:.0f} s: {total.requests} requests, {total.ok} ok, "
            f"{total.server_errors} 5xx, {len(tracker.pending)} jobs pending"
        )
