"""Long-video summaries (issue 17): ``python -m scripts.bench.long_video``.

Usage (from the repository root)::

    PYTHONPATH=$PWD .venv/bin/python -m scripts.bench.long_video [--out section.md]
        [--cache /tmp/serve_app_bench] [--minutes 60] [--short-minutes 10] [--skip-serve]

One run, on 1280x720 H.264 at 30 fps (ffmpeg's ``testsrc2`` pattern, moving, encoded
once with libx264 ultrafast at 2 Mbit/s, a keyframe a second, one minute repeated;
made on first use and cached in ``--cache``, see :mod:`scripts.bench.videos`):

1. decode-only baselines of the long video, each in a fresh process: the summary
   executor's own pass without the model (index, then the planned frames decoded at
   the model's size) and a full decode of every frame;
2. the summary job (default request: 30 s chunks, default frames per chunk; the tiny
   model on CPU; :mod:`scripts.bench.long_video_job`) on the long and the short video,
   each in a fresh process: wall time (submit to success) against the decode-only pass
   of the same file, and peak memory (long vs short: flat, not proportional);
3. on Ray Serve (own cluster, 2 CPUs): the short video's summary through the HTTP API
   with 1 and then 2 VisionLanguageModel replicas (:mod:`scripts.bench.long_video_serve`).

Prints a Markdown section (table, machine, load averages); ``--out`` writes it too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread per process, as in tests

from scripts.bench.run import load, machine
from scripts.bench.videos import FPS, testsrc_name, testsrc_video

MB = 1_000_000
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "serve_app_bench"
WIDTH, HEIGHT, BITRATE_MBIT = 1280, 720, 2


@dataclass
class Report:
    """Everything one run measured, and the load average at each step."""

    videos: dict[int, tuple[Path, str]] = field(default_factory=dict)
    jobs: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    serve: list[Any] = field(default_factory=list)
    serve_error: str = ""
    loads: list[tuple[str, str]] = field(default_factory=list)

    def mark(self, step: str) -> None:
        self.loads.append((step, load()))
        print(f"[long-video] {step} (load {load()})", file=sys.stderr, flush=True)


def make_videos(minutes: list[int], cache: Path, report: Report) -> None:
    """The test videos, made once and cached; how long each took, or "cached"."""
    for m in minutes:
        cached = (cache / testsrc_name(m, WIDTH, HEIGHT, BITRATE_MBIT)).exists()
        began = time.perf_counter()
        path = testsrc_video(m, WIDTH, HEIGHT, BITRATE_MBIT, cache)
        made = "cached" if cached else f"made in {time.perf_counter() - began:.1f} s"
        report.videos[m] = (path, made)
        size = path.stat().st_size / MB
        print(f"[long-video] {path.name}: {size:.0f} MB, {made}", file=sys.stderr)


def run_job(mode: str, video: Path, cache: Path) -> dict[str, Any]:
    """One :mod:`scripts.bench.long_video_job` measurement in a fresh process.

    Adds ``process_peak_rss_mb`` and ``process_cpu_s``: the child's whole-life peak RSS
    and CPU time (``wait4``).
    """
    with tempfile.TemporaryDirectory(prefix="long-video-job-") as work:
        command = [sys.executable, "-m", "scripts.bench.long_video_job", mode, str(video),
                   "--cache", str(cache), "--work", work]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} on {video.name} exited {proc.returncode}")
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    found["process_peak_rss_mb"] = round(usage.ru_maxrss * 1024 / MB, 1)
    # CPU seconds of the whole process (setup included): less at the mercy of other
    # work on a shared machine than the wall time.
    found["process_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    print(f"[long-video] {json.dumps(found)}", file=sys.stderr, flush=True)
    return found


def run_serve(video: Path, cache: Path, repeat: int, chunks_in_flight: int, report: Report) -> None:
    """Both replica counts ``repeat`` times, alternating, on a cluster of its own.

    A cluster that fails to start (a raylet slow to register on a loaded machine) is
    tried once more; any other failure is reported, not raised (the in-process figures
    are kept).
    """
    from scripts.bench.env import ray_cluster
    from scripts.bench.long_video_serve import measure

    for attempt in (1, 2):
        started = False
        try:
            with (
                tempfile.TemporaryDirectory(prefix="long-video-serve-") as work,
                ray_cluster(2) as cluster,
            ):
                started = True
                for _ in range(repeat):
                    for replicas in (1, 2):
                        report.mark(f"serve x{replicas}")
                        run = measure(
                            cluster, cache, Path(work), video, replicas, chunks_in_flight, 3600
                        )
                        print(f"[long-video] {run}", file=sys.stderr, flush=True)
                        report.serve.append(run)
            return
        except Exception as exc:
            report.serve_error = f"{type(exc).__name__}: {exc}"[:300]
            print(f"[long-video] Ray Serve part failed: {report.serve_error}", file=sys.stderr)
            if started or attempt == 2:
                return
            time.sleep(10)
            report.serve_error = ""


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 else "n/a"


def section(report: Report, long_m: int, short_m: int, command: str, started: str) -> str:
    jobs = report.jobs
    lines = [
        "## Long-video summaries (issue 17)",
        "",
        f"Generated by `{command}` on {started} (UTC).",
        "",
        f"Machine: {machine()}.",
        "Load average (1/5/15 min) at each step: "
        + "; ".join(f"{step}: {value}" for step, value in report.loads)
        + ".",
        "",
        "Videos: 1280x720 H.264 (libx264 ultrafast, 2 Mbit/s, no B-frames, a keyframe every "
        f"second), {FPS} fps, `testsrc2` (moving pattern and counter); "
        + "; ".join(
            f"{m} min: {path.stat().st_size / MB:.0f} MB, {made}"
            for m, (path, made) in sorted(report.videos.items())
        )
        + ".",
        "",
    ]
    decode = jobs.get(("decode-plan", long_m))
    if decode is not None:
        lines += [
            "| measurement | video | wall s | vs decode-only (executor pass) | frames | "
            "process CPU s | job peak RSS MB | process peak RSS MB |",
            "|---|---|---|---|---|---|---|---|",
        ]
        order = [
            ("decode-plan", long_m, "decode-only: index + planned frames (baseline)"),
            ("decode-all", long_m, "decode-only: every frame"),
            ("summary", long_m, "summary job, tiny model (submit to success)"),
            ("decode-plan", short_m, "decode-only: index + planned frames"),
            ("summary", short_m, "summary job, tiny model (submit to success)"),
        ]
        for mode, minutes, label in order:
            found = jobs.get((mode, minutes))
            if found is None:
                continue
            base = jobs.get(("decode-plan", minutes), decode)
            lines.append(
                f"| {label} | {minutes} min | {found['wall_s']:.1f} | "
                f"{_ratio(found['wall_s'], base['wall_s'])} | {found['frames']} | "
                f"{found.get('process_cpu_s', 0):.0f} | "
                f"{found['job_peak_rss_mb']:.0f} | {found['process_peak_rss_mb']:.0f} |"
            )
        lines.append("")
    long_job, short_job = jobs.get(("summary", long_m)), jobs.get(("summary", short_m))
    if long_job and short_job:
        growth_long = long_job["job_peak_rss_mb"] - long_job["setup_rss_mb"]
        growth_short = short_job["job_peak_rss_mb"] - short_job["setup_rss_mb"]
        lines += [
            f"- Summary job, {long_m} min: {long_job['chunks']} chunks, {long_job['frames']} "
            f"frames, {long_job['chapters']} chapters; submit {long_job['submit_s']:.1f} s "
            f"(probe, index, plan, credits), run {long_job['job_s']:.1f} s; model load "
            f"{long_job['model_load_s']:.1f} s (not counted); tokens {long_job['tokens']}; "
            f"{long_job['caption_max_tokens']} caption tokens at most, "
            f"{long_job['chunks_in_flight']} chunks in flight.",
            f"- Peak memory, {long_m} vs {short_m} min ({long_m / short_m:.0f}x the video): "
            f"process peak {long_job['process_peak_rss_mb']:.0f} vs "
            f"{short_job['process_peak_rss_mb']:.0f} MB "
            f"({_ratio(long_job['process_peak_rss_mb'], short_job['process_peak_rss_mb'])}); "
            f"during the job (VmHWM reset after setup) {long_job['job_peak_rss_mb']:.0f} vs "
            f"{short_job['job_peak_rss_mb']:.0f} MB "
            f"({_ratio(long_job['job_peak_rss_mb'], short_job['job_peak_rss_mb'])}); growth "
            f"over the set-up process {growth_long:.0f} vs {growth_short:.0f} MB.",
            "",
        ]
    if report.serve:
        lines += [
            f"Ray Serve, {short_m}-min video, `POST /api/video_summaries` (30 s chunks, "
            "4 chunks in flight), time from submit to success:",
            "",
            "| VisionLanguageModel replicas | deploy s | upload s | job s | chunks | frames | "
            "vs 1 replica (speed-up) | error |",
            "|---|---|---|---|---|---|---|---|",
        ]
        ok = [r for r in report.serve if not r.error]
        best = {n: min((r.job_s for r in ok if r.replicas == n), default=0.0) for n in (1, 2)}
        for run in report.serve:
            speedup = _ratio(best[1], run.job_s) if not run.error else ""
            lines.append(
                f"| {run.replicas} | {run.deploy_s:.1f} | {run.upload_s:.1f} | {run.job_s:.1f} | "
                f"{run.chunks} | {run.frames} | {speedup} | {run.error} |"
            )
        lines.append("")
    if report.serve_error:
        lines += [f"Ray Serve part failed: `{report.serve_error}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="videos and model")
    parser.add_argument("--minutes", type=int, default=60, help="the long video")
    parser.add_argument("--short-minutes", type=int, default=10, help="the short video")
    parser.add_argument("--skip-serve", action="store_true", help="no Ray Serve part")
    parser.add_argument("--serve-repeat", type=int, default=1, help="runs per replica count")
    parser.add_argument("--chunks-in-flight", type=int, default=4)
    parser.add_argument("--out", type=Path, help="write the Markdown section here")
    ns = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    cache = ns.cache.resolve()
    report = Report()
    report.mark("start")

    from scripts.bench.env import tiny_profile

    tiny_profile(cache)  # the tiny model, built once under cache/models
    long_m, short_m = ns.minutes, ns.short_minutes
    make_videos([short_m, long_m], cache, report)
    long_video, short_video = report.videos[long_m][0], report.videos[short_m][0]
    for mode, minutes, video in (
        ("decode-plan", long_m, long_video),
        ("decode-all", long_m, long_video),
        ("summary", long_m, long_video),
        ("decode-plan", short_m, short_video),
        ("summary", short_m, short_video),
    ):
        report.mark(f"{mode} {minutes} min")
        report.jobs[(mode, minutes)] = run_job(mode, video, cache)
    if not ns.skip_serve:
        run_serve(short_video, cache, max(1, ns.serve_repeat), ns.chunks_in_flight, report)
    report.mark("end")
    command = "python -m scripts.bench.long_video " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = section(report, long_m, short_m, command.strip(), started)
    print(text)
    if ns.out:
        ns.out.write_text(text + "\n")
        print(f"[long-video] wrote {ns.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
