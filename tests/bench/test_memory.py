"""The memory benchmark's pure parts: process names, totals, peaks, tables, test videos."""

from __future__ import annotations

import os
from pathlib import Path

import av

from scripts.bench import videos
from scripts.bench.memory import (
    ANALYSIS,
    UPLOAD,
    MemoryResult,
    Upload,
    chunk_trace,
    memory_rows,
    process_rows,
    spread,
)
from scripts.bench.procmem import MB, PhasePeak, Sampler, Snapshot, process_name
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import probe_video


def test_process_names_keep_the_proxy_and_the_apps_replicas() -> None:
    assert process_name("ray::ProxyActor") == "proxy"
    assert process_name("ray::ServeReplica:bench-memory:Ingress extra", "bench-memory") == "Ingress"
    assert process_name("ray::ServeReplica:other:Ingress", "bench-memory") is None
    assert process_name("ray::ServeReplica:other:Ingress") == "Ingress"
    assert process_name("ray::ServeController") is None
    assert process_name("/usr/bin/raylet --foo") is None


def test_physical_counts_shared_pages_once() -> None:
    snap = Snapshot(rss={1: 100, 2: 150}, private={1: 60, 2: 90}, shared=50)
    assert snap.total("rss") == 250
    assert snap.total("private") == 150
    assert snap.total("physical") == 200


def test_phase_peak_keeps_maxima() -> None:
    peak = PhasePeak()
    peak.add(Snapshot(rss={1: 10, 2: 40}, private={1: 10, 2: 40}, shared=5))
    peak.add(Snapshot(rss={1: 30, 2: 20}, private={1: 30, 2: 20}, shared=1))
    assert peak.totals == {"physical": 55, "private": 50, "rss": 50}
    assert peak.rss_each == {1: 30, 2: 40}
    assert peak.shared == 5
    assert peak.samples == 2


def test_sampler_sees_a_peak_of_this_process() -> None:
    sampler = Sampler({os.getpid(): "self"}, [], period_s=0.01)
    sampler.start()
    sampler.begin("grow")
    block = bytearray(64 * MB)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    del block
    sampler.stop()
    peak = sampler.phases["grow"]
    assert peak.samples >= 1
    assert peak.seconds > 0
    # The kernel's VmHWM (or a sample) saw the 64 MB block, freed before stop().
    assert peak.kernel_peaks
    assert peak.rss_each[os.getpid()] >= 60 * MB


def test_spread_keeps_first_and_last() -> None:
    assert spread([]) == []
    assert spread([1.0, 2.0]) == [(1, 1.0), (2, 2.0)]
    points = spread([float(i) for i in range(37)], points=4)
    assert points[0] == (1, 0.0)
    assert points[-1] == (37, 36.0)
    assert len(points) == 4


def _result() -> MemoryResult:
    idle = Snapshot(rss={1: 100 * MB}, private={1: 90 * MB}, shared=10 * MB)

    def peak(physical_mb: int) -> PhasePeak:
        p = PhasePeak(seconds=1.0)
        p.add(Snapshot(rss={1: (physical_mb + 100) * MB}, private={1: (physical_mb + 80) * MB},
                       shared=20 * MB))  # fmt: skip
        return p

    short = Upload("1-min", Path("a.mp4"), 30 * MB, 4, requests=4)
    short.physical_at_post = [100 * MB, 110 * MB, 120 * MB, 130 * MB]
    long = Upload("10-min", Path("b.mp4"), 300 * MB, 37, requests=37)
    long.physical_at_post = [140 * MB] * 37
    phases = {
        short.phase(UPLOAD): peak(40),  # physical total = 40 + 80 + 20 = 140 MB -> +40
        short.phase(ANALYSIS): peak(100),  # +100
        long.phase(UPLOAD): peak(50),
        long.phase(ANALYSIS): peak(110),
    }
    return MemoryResult(
        pids={1: "Ingress"},
        idle=idle,
        idle_after=idle,
        phases=phases,
        uploads=[short, long],
        chunk_bytes=8 * 1024 * 1024,
        inline_media_bytes=128 * 1024 * 1024,
    )


def test_memory_rows_growth_and_ratios() -> None:
    result = _result()
    assert result.growth("1-min: analysis", "physical") == 100
    rows = memory_rows(result)
    assert rows[0][0].startswith("idle")
    assert rows[0][3] == "100.0"  # physical idle = private 90 + shared 10
    by_name = {row[0]: row for row in rows}
    upload = by_name["10-min (300 MB, analysed by path): chunked upload, peak"]
    assert upload[1] == "36"
    assert upload[3] == "50.0"  # physical growth
    assert upload[6] == "10.0"  # rise: 150 MB peak - 140 MB at the first chunk
    assert upload[7] == "0.167x"  # 50 MB over a 300 MB file
    assert upload[8] == "1.25x"  # vs the 1-min upload's 40 MB
    analysis = by_name["10-min: last chunk + assembly + analysis, peak"]
    assert analysis[8] == "1.10x"
    assert by_name["1-min (30 MB, analysed inline): chunked upload, peak"][8] == ""
    assert rows[-1][3] == "0.0"  # nothing retained
    assert chunk_trace(result)[0].startswith("- 1-min, 4 chunks: #1: 0, #2: 10")
    header, per_process = process_rows(result)
    assert header[2:] == ("1-min: upload", "1-min: analysis", "10-min: upload", "10-min: analysis")
    assert per_process[0][:3] == ("Ingress", "100.0", "40.0")
    assert per_process[-1][0].startswith("sum")
    assert per_process[-1][2:] == ("40.0", "100.0", "50.0", "110.0")


def test_testsrc_video_is_the_clip_repeated(tmp_path: Path) -> None:
    path = videos.testsrc_video(3, width=64, height=48, bitrate_mbit=1, cache_dir=tmp_path)
    one = tmp_path / path.name.replace("3min", "1min")
    assert one.exists()
    assert path.stat().st_size > 2.9 * one.stat().st_size
    info = probe_video(path, MediaLimits())
    assert info.frame_count == 3 * 60 * 30
    assert abs(info.duration_s - 180) < 0.1
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keyframes = sum(1 for p in container.demux(stream) if p.size and p.is_keyframe)
    assert keyframes == 180  # one a second, across the joins too
    assert videos.testsrc_video(3, width=64, height=48, bitrate_mbit=1, cache_dir=tmp_path) == path
