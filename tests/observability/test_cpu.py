"""CpuMeter: CPU utilisation over a window that concurrent pollers share."""

from __future__ import annotations

import multiprocessing
import threading
from collections import namedtuple
from typing import Any

from serve_app.observability.cpu import CpuMeter

Times = namedtuple("Times", "user nice system idle iowait guest guest_nice")


class FakeHost:
    """A clock and CPU-time counters that advance only when told (stand-in for /proc/stat)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.busy = 0.0
        self.idle = 0.0
        self.load = 1.0  # the fraction of the CPUs busy while time passes

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.busy += seconds * self.load
        self.idle += seconds * (1 - self.load)

    def times(self) -> Times:
        # guest time is already part of user time and must not count twice
        return Times(self.busy, 0.0, 0.0, self.idle * 0.9, self.idle * 0.1, self.busy, 0.0)

    def meter(self, **kwargs: float) -> CpuMeter:
        return CpuMeter(clock=lambda: self.now, sleep=self.advance, read_times=self.times, **kwargs)


def test_first_reading_measures_instead_of_reporting_zero() -> None:
    host = FakeHost()
    assert host.meter().percent() == 100.0


def test_pollers_in_turn_share_the_window() -> None:
    host = FakeHost()
    meter = host.meter(window_s=5.0)
    meter.percent()
    host.advance(2.0)
    first = meter.percent()
    host.advance(0.01)  # a second poller right after the first
    second = meter.percent()
    assert first == second == 100.0


def test_window_follows_the_load() -> None:
    host = FakeHost()
    meter = host.meter(window_s=2.0)
    meter.percent()
    for _ in range(10):
        host.advance(1.0)
        meter.percent()
    host.load = 0.25
    for _ in range(3):
        host.advance(1.0)
        reading = meter.percent()
    assert reading == 25.0


def _spin(ready: Any, stop: Any) -> None:
    ready.release()
    while not stop.is_set():
        pass


def test_saturated_machine_reads_busy_for_every_concurrent_poller() -> None:
    """Real /proc/stat: one busy process per CPU, several pollers at once."""
    cpus = multiprocessing.cpu_count()
    spawn = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    ready, stop = spawn.Semaphore(0), spawn.Event()
    workers = [spawn.Process(target=_spin, args=(ready, stop)) for _ in range(cpus)]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:  # every spinner is running (interpreters start slowly under load)
            assert ready.acquire(timeout=60)
        meter = CpuMeter(window_s=2.0, min_span_s=1.0)
        readings: list[float] = []
        pollers = [
            threading.Thread(target=lambda: readings.append(meter.percent())) for _ in range(4)
        ]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert len(readings) == 4
    assert min(readings) >= 50.0, readings
