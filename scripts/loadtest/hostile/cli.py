"""Command line of the hostile run (``python scripts/hostile_test.py --help``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from scripts.loadtest.cli import _interrupt
from scripts.loadtest.hostile.config import MIB, HostileConfig
from scripts.loadtest.hostile.runner import run_hostile
from scripts.loadtest.hostile.verdict import HostileReport
from scripts.loadtest.scenarios import Accounts

DESCRIPTION = """\
Issue 15's closing load test. Starts the CPU profile (tiny model) on 127.0.0.1 in its
own Ray cluster and scratch directory; next to paid traffic it holds slow request
bodies open (anonymous and with a token), sends rounds of parallel large uploads
from one user and SIGKILLs the Ingress replica mid-run; then waits for the leases
to run out and checks /healthz, RSS, orphan files and credits.
Exit status: 0 passed; 1 a condition failed (see the verdict row).
"""

#: The service's settings for the run: short leases, so the settle wait stays short.
OVERRIDES = {"accounts": {"hold_lease_s": 3}}


def parser() -> argparse.ArgumentParser:
    d = HostileConfig()
    p = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=d.duration_s, help="seconds of traffic")
    p.add_argument("--slow-anonymous", type=int, default=d.slow_anonymous)
    p.add_argument("--slow-authenticated", type=int, default=d.slow_authenticated)
    p.add_argument("--uploads", type=int, default=d.uploads, help="parallel large uploads")
    p.add_argument("--upload-mb", type=int, default=d.upload_bytes // MIB)
    p.add_argument("--kill-at", type=float, default=d.kill_at_s, help="seconds into the run")
    p.add_argument("--no-kill", action="store_true", help="do not kill the Ingress")
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="paid workers")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs given to Ray")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--json", type=Path, help="also write the report as JSON here")
    return p


def config_from(ns: argparse.Namespace) -> HostileConfig:
    return HostileConfig(
        duration_s=ns.duration,
        slow_anonymous=ns.slow_anonymous,
        slow_authenticated=ns.slow_authenticated,
        uploads=ns.uploads,
        upload_bytes=ns.upload_mb * MIB,
        kill_at_s=None if ns.no_kill else ns.kill_at,
        concurrency=ns.concurrency,
    )


def run(ns: argparse.Namespace, config: HostileConfig) -> HostileReport:
    from scripts.loadtest.service import APP_NAME, create_accounts, local_service

    def log(line: str) -> None:
        print(f"[hostile] {line}", file=sys.stderr, flush=True)

    with local_service(num_cpus=ns.num_cpus, keep=ns.keep, overrides=OVERRIDES, log=log) as target:
        assert target.settings is not None
        more = create_accounts(dict(target.settings))
        extra = Accounts(payer=more.payer, drained=more.drained)
        return asyncio.run(run_hostile(target, extra, config, app=APP_NAME, log=log))


def main(argv: list[str] | None = None) -> int:
    p = parser()
    ns = p.parse_args(argv)
    try:
        config = config_from(ns)
    except ValueError as exc:
        p.error(str(exc))
    signal.signal(signal.SIGTERM, _interrupt)
    report = run(ns, config)
    print(report.markdown())
    if ns.json:
        ns.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0 if report.passed else 1
