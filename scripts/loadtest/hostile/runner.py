"""The hostile run: every attack at once next to paid traffic, then settle and check.

Order: wait for ``/readyz``; sample the baseline RSS; start the ``/healthz`` probe,
the RSS sampler, the slow bodies, the upload rounds, the paid traffic
(:func:`~scripts.loadtest.runner.run_load_test`) and the Ingress kill; when the paid
traffic is done, stop the attacks (an upload round in progress finishes), wait for
the leases to run out (``settle``), then scan the data directory and reconcile every
user's credits. Only the local service is supported: the kill and the RSS need its
processes, the orphan scan its data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from scripts.loadtest.client import Client, require_loopback
from scripts.loadtest.config import LoadConfig, RetryPolicy
from scripts.loadtest.hostile import orphans, processes
from scripts.loadtest.hostile.config import HostileConfig
from scripts.loadtest.hostile.probe import ProbeLog, probe_health
from scripts.loadtest.hostile.slow_bodies import SlowTally, hold_slot
from scripts.loadtest.hostile.uploads import UploadTally, padded_video, upload_rounds
from scripts.loadtest.hostile.verdict import HostileReport, TimedRecorder, Window
from scripts.loadtest.jobs import JobTracker
from scripts.loadtest.ledger import Book
from scripts.loadtest.media import MediaSet, make_media
from scripts.loadtest.reconcile import reconcile
from scripts.loadtest.runner import Target, open_accounts, run_load_test, wait_ready
from scripts.loadtest.scenarios import Accounts

#: The paid traffic: analyses (single-file and chunked), stories and polls; no jobs.
PAID_MIX = {"analyze_image": 30, "analyze_video": 10, "analyze_chunked": 6, "story": 4,
            "stats": 5, "me": 5}  # fmt: skip
SLOW_PATH = "api/analyze"
BASELINE_SAMPLES = 3
#: Slack over the body deadlines for a slow body to be cut off on a loaded machine.
SLOW_HOLD_SLACK_S = 15.0


def settle_seconds(settings: dict) -> float:
    """How long after the traffic leases of a dead process surely ran out."""
    lease = float(settings.get("accounts", {}).get("hold_lease_s", 30))
    return 2 * lease + 5.0


def max_slow_hold(settings: dict) -> float:
    from serve_app.accounts.settings import AdmissionSettings

    admission = AdmissionSettings(**settings.get("admission", {}))
    return max(admission.body_idle_timeout_s, admission.body_grace_s) + SLOW_HOLD_SLACK_S


async def _sample_memory(
    fragments: dict[str, str], memory: processes.MemoryLog, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        memory.add(await asyncio.to_thread(processes.sample, fragments))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _kill_later(delay: float, fragment: str, log: Callable[[str], None]) -> processes.Kill:
    await asyncio.sleep(delay)
    kill = processes.kill_one(fragment)
    log(f"SIGKILLed the Ingress (pid {kill.pid})")
    return kill


async def run_hostile(
    target: Target,
    extra: Accounts,
    config: HostileConfig,
    *,
    app: str,
    log: Callable[[str], None],
    media: MediaSet | None = None,
) -> HostileReport:
    """Run the scenario against the local service ``target`` (deployed as ``app``).

    ``extra.payer`` sends the large uploads, ``extra.drained`` the authenticated slow
    bodies (users of their own, so their caps do not touch the paid traffic).
    """
    if target.settings is None or target.database_url is None:
        raise ValueError("the hostile run needs the local service (settings and database)")
    settings = dict(target.settings)
    base = require_loopback(target.base_url).rstrip("/") + "/"
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if media is None:
        media = await asyncio.to_thread(make_media)
    big = padded_video(media.video, config.upload_bytes)
    recorder, book = TimedRecorder(), Book()
    fragments = processes.roles(app)
    memory, probes = processes.MemoryLog(), ProbeLog()
    slow = [SlowTally("anonymous"), SlowTally("with token")]
    uploads = UploadTally()
    started_utc = dt.datetime.now(dt.UTC)
    limits = httpx.Limits(max_connections=config.uploads + 8)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:
        client = Client(http, recorder, RetryPolicy())
        await wait_ready(http, log)
        main_accounts = await open_accounts(client, target.accounts, Book())
        extra = await open_accounts(client, extra, book)
        assert extra.drained is not None
        for _ in range(BASELINE_SAMPLES):
            memory.add(await asyncio.to_thread(processes.sample, fragments))
            await asyncio.sleep(1.0)
        attacks_stop, watch_stop = asyncio.Event(), asyncio.Event()
        rng = random.Random(config.seed)
        began = time.monotonic()
        watchers = [
            asyncio.create_task(
                probe_health(
                    base, config.probe_interval_s, config.probe_timeout_s, watch_stop, probes
                )
            ),
            asyncio.create_task(_sample_memory(fragments, memory, watch_stop)),
        ]
        tokens = [None] * config.slow_anonymous + [extra.drained.token] * config.slow_authenticated
        attacks = [
            asyncio.create_task(
                hold_slot(
                    slow[token is not None],
                    attacks_stop,
                    host=host,
                    port=port,
                    path=parts.path.rstrip("/") + "/" + SLOW_PATH,
                    declared=config.declared_bytes,
                    first_bytes=config.first_bytes,
                    token=token,
                    trickle_s=config.trickle_every_s if i % 2 else None,
                    rng=rng,
                )
            )
            for i, token in enumerate(tokens)
        ]
        attacks.append(
            asyncio.create_task(
                upload_rounds(client, extra.payer, book, big, config.uploads, attacks_stop, uploads)
            )
        )
        killer = (
            asyncio.create_task(_kill_later(config.kill_at_s, fragments["Ingress"], log))
            if config.kill_at_s is not None
            else None
        )
        log(
            f"{len(tokens)} slow bodies, {config.uploads} parallel uploads of "
            f"{config.upload_bytes} bytes, paid traffic for {config.duration_s:g} s"
        )
        load = LoadConfig(
            duration_s=config.duration_s,
            concurrency=config.concurrency,
            mix=PAID_MIX,
            drain_timeout_s=30,
            grace_s=120,
            seed=config.seed,
        )
        load_report = await run_load_test(target, load, media, log, recorder=recorder, book=book)
        attacks_stop.set()
        await asyncio.gather(*attacks)
        kill = await killer if killer is not None else None
        traffic_s = time.monotonic() - began
        settle_s = settle_seconds(settings)
        log(f"attacks stopped after {traffic_s:.0f} s; settling {settle_s:.0f} s")
        await asyncio.sleep(settle_s)
        watch_stop.set()
        await asyncio.gather(*watchers)
        disk = orphans.scan(Path(settings["data_dir"]))
        tracker = JobTracker(client, book, 1.0)
        accounts = [*main_accounts.all(), *extra.all()]
        reconciliation = await reconcile(
            client, accounts, book, tracker, target.database_url, started_utc
        )
    window = None
    if kill is not None:
        back = probes.first_ok_after(kill.at)
        window = Window(kill.at, back.at) if back is not None else None
    return HostileReport(
        config=config,
        began=began,
        traffic_s=traffic_s,
        settle_s=settle_s,
        max_slow_hold_s=max_slow_hold(settings),
        kill=kill,
        window=window,
        probes=probes,
        recorder=recorder,
        slow=slow,
        uploads=uploads,
        memory=memory,
        disk=disk,
        reconciliation=reconciliation,
        load_failures=[f"paid traffic: {p}" for p in load_report.reconciliation.problems],
    )
