"""Command line of the load test (``python scripts/load_test.py --help``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from scripts.loadtest.client import is_loopback_url
from scripts.loadtest.config import MAX_CONCURRENCY, MAX_DURATION_S, MAX_REQUESTS, LoadConfig
from scripts.loadtest.ledger import Account, Role
from scripts.loadtest.report import Report
from scripts.loadtest.runner import Target, run_load_test
from scripts.loadtest.scenarios import Accounts

DESCRIPTION = """\
Mixed traffic against serve_app for a bounded time (analyses of images and videos,
chunked uploads, stories, batch jobs, stats polls), then a check that credits and
jobs reconcile. By default it starts the CPU profile (tiny model) on 127.0.0.1 in its
own Ray cluster and scratch directory, with its own users, and stops it at the end.
With --url it targets a running service on loopback instead (tokens required).
Exit status: 0 passed; 1 any 5xx, lost request, broken API promise, credit mismatch,
failed or stuck job.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=180, help=f"seconds (max {MAX_DURATION_S:g})")
    p.add_argument("--concurrency", type=int, default=8, help=f"workers (max {MAX_CONCURRENCY})")
    p.add_argument(
        "--max-requests", type=int, default=20_000, help=f"request budget (max {MAX_REQUESTS})"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drain-timeout", type=float, default=180, help="seconds to wait for jobs")
    p.add_argument("--story-language", default="ja", help="language of most stories")
    p.add_argument("--json", type=Path, help="also write the report as JSON here")
    p.add_argument("--markdown", action="store_true", help="also print the markdown table")
    local = p.add_argument_group("local service (default)")
    local.add_argument("--num-cpus", type=int, default=2, help="CPUs given to Ray")
    local.add_argument("--keep", action="store_true", help="keep the scratch directory")
    local.add_argument(
        "--backpressure",
        action="store_true",
        help="deploy with tiny queues (max_queued_requests=1) so 503s and retries happen",
    )
    remote = p.add_argument_group("a running service")
    remote.add_argument("--url", help="its root URL; loopback only (127.0.0.1, ::1, localhost)")
    remote.add_argument(
        "--token", default=os.environ.get("LOADTEST_TOKEN"),
        help="API token of the paying user (env LOADTEST_TOKEN)",
    )  # fmt: skip
    remote.add_argument(
        "--drained-token", default=os.environ.get("LOADTEST_DRAINED_TOKEN"),
        help="optional: API token of a user with few credits (402s)",
    )  # fmt: skip
    remote.add_argument(
        "--admin-token", default=os.environ.get("LOADTEST_ADMIN_TOKEN"),
        help="optional: an admin's API token for the stats polls",
    )  # fmt: skip
    remote.add_argument("--story-cost", type=int, default=10, help="the service's story.cost")
    p.add_argument(
        "--database-url",
        help="local: serve from this database instead of SQLite in the scratch directory; "
        "--url: the service's database, for the ledger, reservation and job checks",
    )
    return p


def config_from(ns: argparse.Namespace) -> LoadConfig:
    return LoadConfig(
        duration_s=ns.duration,
        concurrency=ns.concurrency,
        max_requests=ns.max_requests,
        seed=ns.seed,
        drain_timeout_s=ns.drain_timeout,
        story_language=ns.story_language,
    )


def remote_target(ns: argparse.Namespace) -> Target:
    """The ``--url`` target. Raises ValueError for a non-loopback URL or no token."""
    if not is_loopback_url(ns.url):
        raise ValueError(f"--url must be on loopback (127.0.0.1, ::1 or localhost): {ns.url}")
    if not ns.token:
        raise ValueError("--url needs --token (or LOADTEST_TOKEN): the paying user's API token")

    def account(role: Role, token: str | None) -> Account | None:
        return Account(role, role, token) if token else None

    payer = account("payer", ns.token)
    assert payer is not None
    return Target(
        base_url=ns.url,
        accounts=Accounts(
            payer=payer,
            drained=account("drained", ns.drained_token),
            admin=account("admin", ns.admin_token),
        ),
        database_url=ns.database_url,
        story_cost=ns.story_cost,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops like Ctrl-C: the local service is shut down


def run(ns: argparse.Namespace, config: LoadConfig) -> Report:
    def log(line: str) -> None:
        print(f"[load] {line}", file=sys.stderr, flush=True)

    if ns.url:
        return asyncio.run(run_load_test(remote_target(ns), config, log=log))
    from scripts.loadtest.service import local_service

    with local_service(
        num_cpus=ns.num_cpus,
        database_url_override=ns.database_url,
        keep=ns.keep,
        backpressure=ns.backpressure,
        log=log,
    ) as target:
        return asyncio.run(run_load_test(target, config, log=log))


def main(argv: list[str] | None = None) -> int:
    p = parser()
    ns = p.parse_args(argv)
    try:
        config = config_from(ns)
        if ns.url:
            remote_target(ns)
    except ValueError as exc:
        p.error(str(exc))
    signal.signal(signal.SIGTERM, _interrupt)
    report = run(ns, config)
    print(report.text())
    if ns.markdown:
        print()
        print(report.markdown_table())
    if ns.json:
        ns.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"[load] wrote {ns.json}", file=sys.stderr)
    return 0 if report.passed else 1
