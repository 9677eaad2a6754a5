"""System CPU utilisation over a sliding window, the same for every reader.

``psutil.cpu_percent(interval=None)`` measures since the previous call anywhere in the
process, so concurrent pollers shorten each other's window to nothing (and the first
call reads 0.0). :class:`CpuMeter` keeps its own samples of the system's CPU times and
answers with the utilisation between the oldest sample inside its window and now.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import psutil

#: Fields of ``psutil.cpu_times()`` that count as not busy.
IDLE_FIELDS = ("idle", "iowait")
#: Fields already counted in ``user`` / ``nice`` (Linux), left out of the total.
GUEST_FIELDS = ("guest", "guest_nice")


def busy_and_total(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds of one ``psutil.cpu_times()`` reading."""
    fields = times._asdict()
    total = sum(value for name, value in fields.items() if name not in GUEST_FIELDS)
    idle = sum(fields.get(name, 0.0) for name in IDLE_FIELDS)
    return total - idle, total


class CpuMeter:
    """Utilisation (0-100) of all CPUs over the last ``window_s`` seconds.

    A reading takes a sample (at most one per ``min_gap_s``) and compares it with the
    oldest sample still inside the window; with less than ``min_span_s`` of history
    (the first reading) it waits that long for a second sample.
    """

    def __init__(
        self,
        window_s: float = 5.0,
        min_span_s: float = 0.25,
        min_gap_s: float = 0.1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        read_times: Callable[[], Any] = psutil.cpu_times,
    ) -> None:
        self.window_s = window_s
        self.min_span_s = min_span_s
        self.min_gap_s = min_gap_s
        self._clock = clock
        self._sleep = sleep
        self._read_times = read_times
        self._samples: deque[tuple[float, float, float]] = deque()
        self._lock = threading.Lock()

    def _sample(self) -> tuple[float, float, float]:
        now = self._clock()
        if self._samples and now - self._samples[-1][0] < self.min_gap_s:
            return self._samples[-1]
        busy, total = busy_and_total(self._read_times())
        self._samples.append((now, busy, total))
        # Keep one sample at or beyond the window's start as the base of the next reading.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()
        return self._samples[-1]

    def percent(self) -> float:
        """Blocks up to ``min_span_s`` on the first reading; call it off the event loop."""
        with self._lock:
            newest = self._sample()
            base = self._samples[0]
            if newest[0] - base[0] < self.min_span_s:
                self._sleep(self.min_span_s - (newest[0] - base[0]))
                newest = self._sample()
            busy = newest[1] - base[1]
            total = newest[2] - base[2]
        if total <= 0:
            return 0.0
        return round(min(100.0, max(0.0, 100.0 * busy / total)), 1)
