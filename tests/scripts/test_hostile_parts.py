"""Parts of the hostile load test that need no service: slow bodies against a local
socket server, the padded upload, the orphan scan, the verdict's windows, the bounds."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import pytest

from scripts.loadtest.hostile.config import MIB, HostileConfig
from scripts.loadtest.hostile.orphans import DiskState, scan
from scripts.loadtest.hostile.probe import Probe, ProbeLog
from scripts.loadtest.hostile.processes import Kill, MemoryLog
from scripts.loadtest.hostile.slow_bodies import (
    CLOSED,
    HELD,
    SlowTally,
    hold_slot,
    parse_status,
    request_head,
)
from scripts.loadtest.hostile.uploads import UploadTally, padded_video
from scripts.loadtest.hostile.verdict import HostileReport, TimedRecorder, Window
from scripts.loadtest.media import MediaFile, encode_video
from scripts.loadtest.reconcile import Reconciliation


def test_bounds_are_enforced() -> None:
    with pytest.raises(ValueError, match="slow connections"):
        HostileConfig(slow_anonymous=150, slow_authenticated=100)
    with pytest.raises(ValueError, match="kill_at_s"):
        HostileConfig(duration_s=30, kill_at_s=40)
    with pytest.raises(ValueError, match="upload_bytes"):
        HostileConfig(upload_bytes=500 * MIB)


def test_the_padded_upload_is_a_valid_mp4_of_the_requested_size() -> None:
    video = MediaFile("clip.mp4", encode_video(frames=10), "video/mp4")
    big = padded_video(video, 2 * MIB)

    assert len(big.data) == 2 * MIB
    with av.open(io.BytesIO(big.data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 10


def test_response_heads_are_parsed() -> None:
    assert parse_status(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n\r\n") == ("429", 2.0)
    assert parse_status(b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n") == (
        "408",
        0.0,
    )
    assert parse_status(b"") == (CLOSED, 0.0)
    head = request_head("127.0.0.1", 80, "/api/analyze", 50 * MIB, "sa_x").decode()
    assert f"Content-Length: {50 * MIB}\r\n" in head and "Bearer sa_x" in head


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _slot_against(handler: Handler, run_s: float, **slot: Any) -> SlowTally:
    """Run one slow slot against a local server with ``handler`` for ``run_s``."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tally, stop = SlowTally("test"), asyncio.Event()
    task = asyncio.create_task(
        hold_slot(
            tally,
            stop,
            host="127.0.0.1",
            port=port,
            path="/x",
            declared=MIB,
            rng=random.Random(1),
            **slot,
        )
    )
    await asyncio.sleep(run_s)
    # The reopen pause is 1-3 s: the slot waits in it, or holds its next connection.
    stop.set()
    await asyncio.wait_for(task, 5)
    server.close()
    await server.wait_closed()
    return tally


async def test_a_slow_slot_reopens_after_each_answer_and_stops_on_request() -> None:
    """A server that answers 408 once 1 KB arrived; the slot reconnects until stopped."""
    received: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        received.append(len(await reader.readexactly(1024)))
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nRetry-After: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    tally = await _slot_against(serve, 0.2, first_bytes=1024, token=None, trickle_s=0.05)

    assert tally.outcomes["408"] >= 1 and received[0] == 1024
    assert tally.open_now == 0 and tally.opened == sum(tally.outcomes.values())


async def test_a_stalled_slot_is_counted_as_held_when_the_server_never_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        finally:
            writer.close()

    tally = await _slot_against(silent, 0.3, first_bytes=10, token="sa_x", trickle_s=None)

    assert dict(tally.outcomes) == {HELD: 1}
    assert tally.max_unanswered_s >= 0.3 and tally.max_held_s == 0


def test_only_the_service_s_leftovers_are_orphans(tmp_path: Path) -> None:
    for name in (
        "spool/abc.upload",
        "blobs/.tmp/123",
        "uploads/u1/.staging/x.upload",
        "uploads/u1/k1/claim",
        "uploads/u1/k1/manifest.json",
        "uploads/u1/k2/manifest.json",
        "uploads/u1/k2/result.json",
        "uploads/u1/k3.gone",
        "blobs/uploads/video.mp4",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"12")

    state = scan(tmp_path)

    assert state.counts() == {"spool": 1, "blob tmp": 1, "upload staging": 1}
    assert state.orphan_bytes == 6 and state.unfinished_uploads == 1 and state.claims == 1
    assert scan(tmp_path / "missing").orphan_count == 0


def _report(recorder: TimedRecorder, probes: ProbeLog, **changes: object) -> HostileReport:
    fields: dict[str, object] = dict(
        config=HostileConfig(duration_s=100, kill_at_s=10, uploads=2),
        began=0.0, traffic_s=100, settle_s=10, max_slow_hold_s=30,
        kill=Kill(pid=1, at=10.0), window=Window(10.0, 20.0), probes=probes,
        recorder=recorder, slow=[SlowTally("anonymous")], uploads=UploadTally(succeeded=4),
        memory=MemoryLog(), disk=DiskState(), reconciliation=Reconciliation([], True),
    )  # fmt: skip
    fields.update(changes)
    return HostileReport(**fields)  # type: ignore[arg-type]


def test_failures_in_the_restart_window_are_allowed_and_outside_it_are_not() -> None:
    probes = ProbeLog([Probe(5.0, 0.05, 200), Probe(9.0, 5.0, 0, "ReadTimeout"),
                       Probe(20.0, 0.1, 200)])  # fmt: skip
    recorder = TimedRecorder()
    recorder.failure_times = [
        (11.0, "analyze:image", 500, "Internal Server Error"),
        (24.0, "analyze:video", 0, "ReadError: "),  # inside the 5 s grace
        (40.0, "upload:large", 0, "ReadError: "),  # a refusal reset: reported, allowed
    ]
    report = _report(recorder, probes)

    assert report.passed, report.failures
    assert report.steady_probes()["failed"] == 0 and report.window_probes()["failed"] == 1
    assert report.failures_inside() == 2 and len(report.refusal_resets()) == 1

    recorder.failure_times.append((60.0, "story", 502, "Bad Gateway"))
    probes.probes.append(Probe(70.0, 5.0, 0, "ReadTimeout"))
    memory = MemoryLog(bucket=2)
    for value in (200.0, 900.0, 300.0):
        memory.add({"Ingress": value, "Ingress private": value})
    assert memory.series["Ingress"] == [900, 300] and memory.last["Ingress"] == 300
    failed = _report(recorder, probes, memory=memory).failures

    assert any("/healthz failed 1 times" in f for f in failed)
    assert any("story 502" in f for f in failed)
    assert any("Ingress private memory grew 700 MiB" in f for f in failed)
    assert not any("Ingress RSS" in f for f in failed)  # judged on private memory
    assert "| verdict | FAIL" in _report(recorder, probes).markdown()
