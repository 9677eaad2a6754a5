"""Memory: the proxy's and replicas' memory while big videos arrive and are analysed.

The full graph (proxy -> Ingress -> FrameExtractor -> VisionLanguageModel, plus the
job deployments) with the tiny model, as in the overhead case. After a warm-up (one
small chunked upload and its analysis) the idle memory of the HTTP proxy and of every
replica is read, then two 1080p30 H.264 videos go to ``POST /api/analyze`` as chunked
uploads (8 MiB chunks, the service's default interval and frame cap), one after the
other, while a thread samples memory every 50 ms:

1. a 1-minute video (~30 MB): the baseline;
2. a 10-minute video (~300 MB): the 300 MB chunked upload, then the analysis of
   10 minutes of video.

Each upload has two phases: the chunks before the last one ("upload"), and the last
chunk, whose request assembles the file, probes it and runs the analysis
("analysis"). A phase's growth is its peak over the idle memory before both videos;
bounded means the 10-minute rows grow about as much as the 1-minute rows, not 10x.
See :mod:`scripts.bench.procmem` for the three measures.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.bench.common import Row
from scripts.bench.env import BenchEnv, Cluster, admin_token, app_settings
from scripts.bench.procmem import (
    MB,
    METRICS,
    PhasePeak,
    Sampler,
    Snapshot,
    service_processes,
    shared_memory_files,
    snapshot,
)

APP = "bench-memory"
MIB = 1024 * 1024
CHUNK_BYTES = 8 * MIB
#: Each upload (all chunks and the analysis) is capped at the larger of this and
#: ``--time-limit``.
UPLOAD_TIME_LIMIT_S = 600.0
#: How often the totals are sampled (per-process peaks come from the kernel).
SAMPLE_PERIOD_S = 0.02
UPLOAD = "upload"
ANALYSIS = "analysis"
METRIC_NAMES = {
    "physical": "physical MB",
    "private": "private MB",
    "rss": "sum of RSS MB",
}


def log(message: str) -> None:
    print(f"[bench] memory: {message}", file=sys.stderr, flush=True)


@dataclass
class Upload:
    """One video sent in chunks, and how it went."""

    label: str
    path: Path
    size: int
    chunks: int
    requests: int = 0
    seconds: float = 0.0
    error: str = ""
    response: dict[str, Any] = field(default_factory=dict)
    #: Latest sample of ``physical`` (bytes) as each POST starts: a plateau, or a leak?
    physical_at_post: list[int] = field(default_factory=list)

    def phase(self, part: str) -> str:
        return f"{self.label}: {part}"


@dataclass
class MemoryResult:
    """Everything one memory run measured."""

    pids: dict[int, str]
    idle: Snapshot
    idle_after: Snapshot
    phases: dict[str, PhasePeak]
    uploads: list[Upload]
    chunk_bytes: int
    #: Files up to this size go to the FrameExtractor inline (read into memory and sent
    #: through the object store); larger ones by path.
    inline_media_bytes: int

    def growth(self, phase: str, metric: str) -> float | None:
        """Peak over idle of ``metric`` in ``phase``, in MB (None if never sampled)."""
        peak = self.phases.get(phase)
        if peak is None or metric not in peak.totals:
            return None
        return (peak.totals[metric] - self.idle.total(metric)) / MB


async def upload_video(
    base_url: str,
    token: str,
    upload: Upload,
    chunk_bytes: int,
    sampler: Sampler | None,
    time_limit_s: float,
) -> None:
    """Send ``upload`` in chunks; ``sampler`` switches phase before the last chunk."""
    from scripts.clients.chunked_upload import ChunkUploader, UploadOptions

    async def on_request(request: httpx.Request) -> None:
        if request.method != "POST":
            return
        upload.requests += 1
        if sampler is None:
            return
        if sampler.last is not None:
            upload.physical_at_post.append(sampler.last.total("physical"))
        if upload.requests == upload.chunks:
            sampler.begin(upload.phase(ANALYSIS))

    options = UploadOptions(
        chunk_bytes=chunk_bytes,
        upload_id="bench-" + "".join(c if c.isalnum() else "-" for c in upload.label),
        final_timeout_s=time_limit_s,
    )
    if sampler is not None:
        sampler.begin(upload.phase(UPLOAD))
    began = time.monotonic()
    try:
        async with httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
            event_hooks={"request": [on_request]},
        ) as client:
            uploader = ChunkUploader(client, options)
            upload.response = await asyncio.wait_for(uploader.upload(upload.path), time_limit_s)
        if not upload.response.get("result"):
            raise RuntimeError(f"no analysis in the response: {upload.response}")
    except Exception as exc:
        upload.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        upload.seconds = time.monotonic() - began


def measure(
    env: BenchEnv,
    cluster: Cluster,
    videos: list[tuple[str, Path]],
    chunk_bytes: int = CHUNK_BYTES,
    time_limit_s: float = UPLOAD_TIME_LIMIT_S,
) -> MemoryResult:
    """Deploy the graph, warm it up, read idle memory, then upload ``videos`` in turn."""
    from ray import serve

    from scripts.clients.chunked_upload import total_chunks_for
    from serve_app.app import AppArgs, ModelEntry, build_graph
    from serve_app.config import Settings

    settings = app_settings(env)
    inline_media_bytes = Settings(**settings).inline_media_bytes
    args = AppArgs(models=[ModelEntry(profile=env.profile)], story_model=None, settings=settings)
    options = {"VisionLanguageModel": {"ray_actor_options": env.model_actor_options}}
    serve.run(build_graph(args, options), name=APP, route_prefix=f"/{APP}")
    base_url = f"http://127.0.0.1:{cluster.port}/{APP}/"
    sampler: Sampler | None = None
    try:
        token = admin_token(env)
        size = env.video.stat().st_size
        warm = Upload("warm-up", env.video, size, total_chunks_for(size, -(-size // 2)))
        asyncio.run(upload_video(base_url, token, warm, -(-size // 2), None, time_limit_s))
        if warm.error:
            raise RuntimeError(f"warm-up upload failed: {warm.error}")
        time.sleep(3)  # let the warm-up's allocations settle
        pids = service_processes(APP)
        links = shared_memory_files()
        log(
            "processes: "
            + ", ".join(f"{n}[{p}]" for p, n in pids.items())
            + f"; {len(links)} shared-memory file(s)"
        )
        idle = snapshot(pids, links)
        sampler = Sampler(pids, links, period_s=SAMPLE_PERIOD_S)
        sampler.start()
        uploads = []
        for label, path in videos:
            size = path.stat().st_size
            upload = Upload(label, path, size, total_chunks_for(size, chunk_bytes))
            log(f"{label}: {size / MB:.0f} MB in {upload.chunks} chunks ...")
            asyncio.run(upload_video(base_url, token, upload, chunk_bytes, sampler, time_limit_s))
            log(f"{label}: {upload.seconds:.0f} s" + (f", {upload.error}" if upload.error else ""))
            uploads.append(upload)
        sampler.stop()
        time.sleep(3)
        idle_after = snapshot(pids, links)
        return MemoryResult(
            pids, idle, idle_after, sampler.phases, uploads, chunk_bytes, inline_media_bytes
        )
    finally:
        if sampler is not None:
            sampler.stop()
        serve.delete(APP)


# ---- tables -------------------------------------------------------------------------

MEMORY_HEADER = (
    "measurement",
    "HTTP requests",
    "seconds",
    *METRIC_NAMES.values(),
    "physical rise in phase MB",
    "physical / file size",
    "physical vs 1-min",
)


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ratio(value: float | None, base: float | None, digits: int = 2) -> str:
    if value is None or base is None or base <= 0:
        return "n/a"
    return f"{value / base:.{digits}f}x"


def phase_start(upload: Upload, part: str) -> int | None:
    """``physical`` (bytes) when ``part`` of ``upload`` began, if sampled."""
    marks = upload.physical_at_post
    if part == UPLOAD:
        return marks[0] if marks else None
    return marks[-1] if len(marks) >= upload.chunks else None


def _absolute(label: str, snap: Snapshot, base: Snapshot | None = None) -> tuple[str, ...]:
    values = (snap.total(m) - (base.total(m) if base else 0) for m in METRICS)
    return (label, "", "", *(_mb(v / MB) for v in values), "", "", "")


def memory_rows(result: MemoryResult) -> list[tuple[str, ...]]:
    """Cells of the memory table: idle (absolute MB), then growth over idle per phase."""
    rows = [_absolute("idle, warm (absolute, before the uploads)", result.idle)]
    baseline = result.uploads[0] if result.uploads else None
    for upload in result.uploads:
        for part in (UPLOAD, ANALYSIS):
            phase = upload.phase(part)
            peak = result.phases.get(phase)
            growth = result.growth(phase, "physical")
            if part == UPLOAD:
                how = "inline" if upload.size <= result.inline_media_bytes else "by path"
                what = (
                    f"{upload.label} ({upload.size / MB:.0f} MB, analysed {how}): "
                    "chunked upload, peak"
                )
                requests = str(max(0, min(upload.requests, upload.chunks - 1)))
            else:
                what = f"{upload.label}: last chunk + assembly + analysis, peak"
                requests = "1" if upload.requests >= upload.chunks else "0"
            if upload.error and part == ANALYSIS:
                what += f" (error: {upload.error})"
            start = phase_start(upload, part)
            rise = None
            if peak is not None and start is not None:
                rise = (peak.totals["physical"] - start) / MB
            vs_base = ""
            if baseline is not None and upload is not baseline:
                vs_base = _ratio(growth, result.growth(baseline.phase(part), "physical"))
            rows.append(
                (
                    what,
                    requests,
                    f"{peak.seconds:.1f}" if peak is not None else "-",
                    *(_mb(result.growth(phase, m)) for m in METRICS),
                    _mb(rise),
                    _ratio(growth, upload.size / MB, 3),
                    vs_base,
                )
            )
    rows.append(
        _absolute("idle after all uploads (growth over idle: retained)", result.idle_after,
                  result.idle)
    )  # fmt: skip
    return rows


def spread(values: list[float], points: int = 6) -> list[tuple[int, float]]:
    """About ``points`` (1-based position, value) pairs spread evenly, first and last kept."""
    if not values:
        return []
    if len(values) <= points:
        return list(enumerate(values, 1))
    step = (len(values) - 1) / (points - 1)
    picks = sorted({round(i * step) for i in range(points)})
    return [(i + 1, values[i]) for i in picks]


def chunk_trace(result: MemoryResult) -> list[str]:
    """Per upload: physical growth over idle as chunks start (a plateau, or a leak?)."""
    idle = result.idle.total("physical")
    lines = []
    for upload in result.uploads:
        points = spread([(v - idle) / MB for v in upload.physical_at_post])
        if len(points) > 2:
            text = ", ".join(f"#{n}: {v:.0f}" for n, v in points)
            lines.append(f"- {upload.label}, {upload.chunks} chunks: {text}")
    return lines


def process_rows(result: MemoryResult) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Per process: idle RSS, then peak RSS growth over idle in each phase."""
    phases = [u.phase(p) for u in result.uploads for p in (UPLOAD, ANALYSIS)]
    header = ("process", "idle RSS MB", *phases)
    rows = []
    for pid, name in sorted(result.pids.items(), key=lambda item: item[1]):
        idle = result.idle.rss.get(pid, 0)
        cells = [name, f"{idle / MB:.1f}"]
        for phase in phases:
            peak = result.phases.get(phase)
            value = peak.rss_each.get(pid) if peak is not None else None
            cells.append(_mb(None if value is None else (value - idle) / MB))
        rows.append(tuple(cells))
    store = ["object store (shared, once)", f"{result.idle.shared / MB:.1f}"]
    total = ["sum of the processes' peaks (upper bound)", f"{result.idle.total('rss') / MB:.1f}"]
    for phase in phases:
        peak = result.phases.get(phase)
        store.append(_mb(None if peak is None else (peak.shared - result.idle.shared) / MB))
        if peak is None:
            total.append("-")
            continue
        each = (peak.rss_each.get(pid, idle) - idle for pid, idle in result.idle.rss.items())
        total.append(_mb(sum(each) / MB))
    rows += [tuple(store), tuple(total)]
    return header, rows


def markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def section(result: MemoryResult, malloc_tuning: bool) -> str:
    """The markdown section of the memory case."""
    kernel = all(p.kernel_peaks for p in result.phases.values())
    header, per_process = process_rows(result)
    malloc = (
        "glibc malloc tuned as `scripts/serve.sh` does (`MALLOC_ARENA_MAX=2`, mmap/trim "
        "thresholds 128 KiB) in every Ray process"
        if malloc_tuning
        else "glibc malloc defaults (run with `--malloc-tuning` for the settings "
        "`scripts/serve.sh` uses)"
    )
    return "\n".join(
        [
            "### Memory: proxy and replicas during big chunked uploads and their analysis",
            "",
            f"`POST /api/analyze` through the full graph with the tiny model, "
            f"{result.chunk_bytes // MIB} MiB chunks, the default interval and frame cap; "
            f"{malloc}. The videos run one after the other, in the order of the table. "
            "MB columns: peak over the warm idle memory before the first video (sampled "
            f"every {SAMPLE_PERIOD_S * 1000:.0f} ms: a spike shorter than that can be "
            "missed), so later rows include what earlier ones left behind; "
            "physical = private memory of the proxy and replicas + this cluster's "
            "object-store pages counted once; rise in phase = physical peak minus physical "
            "when the phase began. Files up to `inline_media_bytes` "
            f"({result.inline_media_bytes / MIB:.0f} MiB) are read into memory and sent "
            "inline; larger ones by path.",
            "",
            markdown_table(MEMORY_HEADER, memory_rows(result)),
            "",
            "Physical growth over idle (MB) as chunk #n of an upload starts:",
            "",
            *chunk_trace(result),
            "",
            "Peak RSS growth over idle per process, MB ("
            + ("kernel VmHWM, reset at each phase" if kernel else "sampled")
            + "; RSS counts the object-store pages a process touched, so the sum of the "
            "peaks counts them once per process and adds peaks of different moments):",
            "",
            markdown_table(header, per_process),
        ]
    )


def run(
    env: BenchEnv, cluster: Cluster, time_limit_s: float, malloc_tuning: bool = False
) -> tuple[list[Row], str]:
    from scripts.bench.videos import testsrc_video

    began = time.monotonic()
    # The 4-minute video (~120 MB) is the largest of the three still sent inline; it
    # runs last, so the 10-minute one is compared with the 1-minute one only.
    videos = [(f"{m}-min 1080p", testsrc_video(m)) for m in (1, 10, 4)]
    log(f"videos ready in {time.monotonic() - began:.0f} s")
    result = measure(
        env,
        cluster,
        videos,
        time_limit_s=max(time_limit_s, UPLOAD_TIME_LIMIT_S),
    )
    return [], section(result, malloc_tuning)
