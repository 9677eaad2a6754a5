"""Run the benchmarks, print a table, write BENCHMARKS.md.

Usage (from the repository root):
    .venv/bin/python -m scripts.bench [--cases overhead batching scaling memory openai]
        [--out BENCHMARKS.md] [--malloc-tuning]

Starts one local Ray cluster (2 CPUs unless --num-cpus, GPUs as detected, its own
RAY_TMPDIR, Serve on a free loopback port), runs each case with bounded request counts
and a time cap per measurement, and shuts Serve and Ray down at the end, also on errors
and Ctrl-C. ``--profile`` benchmarks another model profile (e.g. the transformers
backend with ``device: cuda``) instead of the tiny CPU model. ``--malloc-tuning`` starts
Ray with the glibc malloc settings of ``scripts/serve.sh`` (every Ray process inherits
them), as the service is deployed; the memory case says which it ran with.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread per process, as in tests

from scripts.bench import common
from scripts.bench.common import Row, markdown_rows, text_table

CASES = ("overhead", "batching", "scaling", "memory", "openai")
#: Cases run only when named (they need more than this venv).
DEFAULT_CASES = ("overhead", "batching", "scaling", "memory")


def machine() -> str:
    import psutil
    import ray
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, GPU: {gpu}; "
        f"Python {platform.python_version()}, Ray {ray.__version__}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def run_cases(
    cases: list[str],
    time_limit_s: float,
    keep: bool,
    profile: str | None,
    num_cpus: int,
    malloc_tuning: bool = False,
) -> tuple[list[Row], list[str]]:
    """Rows of every case, and extra markdown sections some cases add."""
    from scripts.bench import batching, memory, overhead, scaling
    from scripts.bench import openai as openai_case
    from scripts.bench.env import bench_env, ray_cluster
    from scripts.bench.procmem import MALLOC_TUNING

    if malloc_tuning:
        os.environ.update(MALLOC_TUNING)  # inherited by every Ray process, the proxy too

    rows: list[Row] = []
    extras: list[str] = []
    with bench_env(keep, profile) as env, ray_cluster(num_cpus) as cluster:
        for case in cases:
            began = time.perf_counter()
            print(f"[bench] {case} ...", file=sys.stderr, flush=True)
            if case == "overhead":
                new, extra = overhead.run(env, cluster, time_limit_s)
                extra = "### Serve overhead: CPU per request by process\n\n" + (
                    "Ray Serve, HTTP, `max_batch_size=1`, concurrency 16 (all runs of that "
                    "row, warm-up included).\n\n" + extra
                )
            elif case == "batching":
                new, extra = batching.run(env, time_limit_s)
            elif case == "memory":
                new, extra = memory.run(env, cluster, time_limit_s, malloc_tuning)
            elif case == "openai":
                new, extra = openai_case.run(env, cluster, time_limit_s)
            else:
                new, extra = scaling.run(env, time_limit_s)
            rows += new
            if extra:
                extras.append(extra)
            print(f"[bench] {case}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return rows, extras


def summary(rows: list[Row]) -> str:
    """The issue's target in words: Serve's extra time per request at concurrency 16."""
    by_variant = {r.variant: r.m for r in rows if r.case == "serve overhead"}
    base = by_variant.get("in-process engine (baseline)")
    lines = []
    for variant, m in by_variant.items():
        if m.concurrency == 16 and variant.startswith("Ray Serve") and base and m.rps > 0:
            extra = base.rps / m.rps - 1  # per-request time is 1 / throughput
            verdict = "within" if extra < 0.2 else "over"
            lines.append(
                f"- {variant}: {extra:+.0%} time per request vs in-process at concurrency 16 "
                f"({verdict} the 20% target)."
            )
    return "\n".join(lines)


def table_intro() -> str:
    return (
        "Every ratio is requests/s against the first row of its case (same concurrency),\n"
        f"measured in the same run; each row is the best of {common.REPEAT} runs. p50/p99:\n"
        "per-request latency seen by the client (nearest rank); errors: failed requests."
    )


def document(
    rows: list[Row], extras: list[str], command: str, started: str, loads: tuple[str, str]
) -> str:
    from scripts.bench.notes import NOTES

    return "\n".join(
        [
            "# Benchmarks",
            "",
            f"Generated by `{command}` on {started} (UTC).",
            "",
            f"Machine: {machine()}.",
            f"Load average (1/5/15 min) before: {loads[0]}; after: {loads[1]}.",
            "",
            *((table_intro(), "", markdown_rows(rows), "", summary(rows), "") if rows else ()),
            *(f"{extra}\n" for extra in extras),
            NOTES,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(DEFAULT_CASES))
    parser.add_argument("--out", type=Path, help="write the full markdown report here")
    parser.add_argument(
        "--time-limit", type=float, default=180, help="seconds per measurement (cap)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per configuration; the best is kept"
    )
    parser.add_argument(
        "--profile", help="model profile YAML (default: the tiny CPU model), e.g. for a GPU"
    )
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs given to Ray")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--malloc-tuning",
        action="store_true",
        help="start Ray with the glibc malloc settings of scripts/serve.sh",
    )
    ns = parser.parse_args(argv)
    common.REPEAT = max(1, ns.repeat)

    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    before = load()
    rows, extras = run_cases(
        ns.cases, ns.time_limit, ns.keep, ns.profile, ns.num_cpus, ns.malloc_tuning
    )
    after = load()
    if rows:
        print(text_table(rows))
        print()
        print(markdown_rows(rows))
    for extra in extras:
        print()
        print(extra)
    if ns.out:
        command = "python -m scripts.bench " + " ".join(argv if argv is not None else sys.argv[1:])
        ns.out.write_text(document(rows, extras, command.strip(), started, (before, after)) + "\n")
        print(f"\n[bench] wrote {ns.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
