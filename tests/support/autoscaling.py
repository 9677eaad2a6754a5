"""Autoscaling observed: a graph with short delays, load ramps, and replica timelines.

Shared by ``tests/deployments/test_autoscaling.py`` and ``scripts/autoscaling_timeline.py``.
The graph's delays are seconds, not minutes, and replicas push their autoscaling
metrics every half second (Ray's defaults: 10 s), so a whole scale-up and scale-down
fits in a test. Every deployment asks for 0.1 CPU so that the extra replicas schedule
on a 2-core machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serve_app.deployments.autoscaling import backlog_autoscaling_config
from serve_app.engines.profile import ModelProfile
from serve_app.media.budget import PixelBudget
from tests.support.graphs import tiny_profile
from tests.support.media_files import loop_video, make_video

#: Replicas and handles push autoscaling metrics this often (Ray's default is 10 s).
FAST_METRICS_ENV = {
    "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
    "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
}
INTERACTIVE = ("FrameExtractor", "VisionLanguageModel")
BATCH = ("JobRunner", "Detector")
#: Ray counts metric points every look_back_period_s / 5; metrics_interval_s is only
#: there to keep Ray's "look_back_period_s must exceed metrics_interval_s" check quiet.
_TIMING = {
    "upscale_delay_s": 1.0,
    "downscale_delay_s": 3.0,
    "look_back_period_s": 2.0,
    "metrics_interval_s": 0.5,
}


def _replica(**options: Any) -> dict[str, Any]:
    return {
        "ray_actor_options": {"num_cpus": 0.1, "runtime_env": {"env_vars": FAST_METRICS_ENV}},
        **options,
    }


def graph_options(max_replicas: int = 2) -> dict[str, dict[str, Any]]:
    """Per-deployment options: FrameExtractor (2 per replica) and the model (6 per
    replica) scale on ongoing requests, JobRunner on the job backlog (1 job per
    replica, down to zero).

    Serve counts a request at a stage only while that stage has it: the Ingress calls
    the model once the FrameExtractor's frames exist (``handles.produced``). The
    model's replica serves one request at a time (``max_batch_size: 1``), so requests
    queue there under any load; its higher target keeps it at one replica under the
    2-client step and the decode-heavy ramp (at most 6 requests in all).
    """
    on_requests = {"min_replicas": 1, "max_replicas": max_replicas, **_TIMING}
    return {
        "Ingress": _replica(num_replicas=1),
        "FrameExtractor": _replica(
            max_ongoing_requests=4,
            autoscaling_config={**on_requests, "target_ongoing_requests": 2},
        ),
        "VisionLanguageModel": _replica(
            max_ongoing_requests=8,
            autoscaling_config={**on_requests, "target_ongoing_requests": 6},
        ),
        "Detector": _replica(num_replicas=1),
        "JobRunner": _replica(
            autoscaling_config=backlog_autoscaling_config(
                max_replicas=max_replicas,
                jobs_per_replica=1,
                frames_per_replica=100,
                downscale_to_zero_delay_s=2.0,
                **_TIMING,
            ),
        ),
    }


#: Video frames the model gets: tiny, so that decoding, not the model, is what a
#: long video costs (images keep the default budget).
SMALL_FRAMES = PixelBudget(video_min_pixels=4 * 28 * 28, video_max_pixels=4 * 28 * 28)
#: Decode-heavy requests: ``interval`` on :func:`decode_heavy_video` keeps 32 frames
#: spread over all its GOPs, so the FrameExtractor decodes nearly every frame.
DECODE_HEAVY_FIELDS = {"interval": "60"}


def autoscaling_profile(model_dir: Path) -> ModelProfile:
    """The tiny model, 32 new tokens, small video frames (:data:`SMALL_FRAMES`)."""
    return tiny_profile(model_dir, max_new_tokens=32).model_copy(update={"pixels": SMALL_FRAMES})


def decode_heavy_video(root: Path) -> Path:
    """A 64 s 720p video (1920 frames, 8 GOPs): an 8 s clip encoded once, looped."""
    clip = make_video(root / "clip.mp4", frames=240, width=1280, height=720, pattern="photo")
    return loop_video(clip, root / "long.mp4", copies=8)


#: Job settings of the graph: one job per runner replica at a time, quick polls.
JOB_SETTINGS = {"poll_interval_s": 0.2, "batch_frames": 8, "concurrent_jobs": 1}


def running_replicas(app: str) -> dict[str, int]:
    """RUNNING replicas per deployment of ``app``, from ``serve.status()``."""
    from ray import serve

    deployments = serve.status().applications[app].deployments
    return {name: d.replica_states.get("RUNNING", 0) for name, d in deployments.items()}


@dataclass
class Sample:
    t: float
    phase: str
    replicas: dict[str, int]


@dataclass
class Timeline:
    """``serve.status()`` sampled every ``every_s`` seconds in a background thread."""

    app: str
    every_s: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    phase: str = "idle"
    _start: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> Sample:
        sample = Sample(time.monotonic() - self._start, self.phase, running_replicas(self.app))
        self.samples.append(sample)
        return sample

    @contextmanager
    def recording(self) -> Iterator[Timeline]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def counts(self, name: str, phase: str | None = None) -> list[int]:
        return [s.replicas.get(name, 0) for s in self.samples if phase in (None, s.phase)]

    def wait_for(
        self, name: str, ok: Callable[[int], bool], timeout_s: float, what: str = ""
    ) -> float:
        """Seconds until ``ok(replicas of name)``; AssertionError with the table if never."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if ok(self.sample().replicas.get(name, 0)):
                return time.monotonic() - start
            time.sleep(self.every_s)
        raise AssertionError(f"{name} never {what} in {timeout_s} s\n{self.table()}")

    def table(self, names: Sequence[str] | None = None, every_s: float = 1.0) -> str:
        """A Markdown table: one row per ``every_s`` (and per change), replicas per name."""
        names = list(names or sorted({n for s in self.samples for n in s.replicas}))
        rows = ["| t (s) | phase | " + " | ".join(names) + " |"]
        rows.append("|---|---|" + "---|" * len(names))
        last: tuple[Any, ...] | None = None
        last_t = -every_s
        for s in self.samples:
            key = (s.phase, *(s.replicas.get(n, 0) for n in names))
            if key != last or s.t - last_t >= every_s:
                cells = " | ".join(str(s.replicas.get(n, 0)) for n in names)
                rows.append(f"| {s.t:.1f} | {s.phase} | {cells} |")
                last, last_t = key, s.t
        return "\n".join(rows)


@dataclass
class LoadResult:
    ok: int = 0
    errors: list[str] = field(default_factory=list)


def analyze_load(
    url: str,
    token: str,
    media: Path,
    concurrency: int,
    done: Callable[[float], bool],
    fields: Mapping[str, str] | None = None,
) -> LoadResult:
    """``concurrency`` clients POST ``media`` to ``/api/analyze`` back to back until
    ``done(seconds since the start)`` (checked between requests)."""
    result = LoadResult()
    start = time.monotonic()
    body = media.read_bytes()
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
            while not stop.is_set():
                response = http.post(
                    f"{url}/api/analyze", files={"file": (media.name, body)}, data=fields
                )
                with lock:
                    if response.status_code == 200:
                        result.ok += 1
                    else:
                        result.errors.append(f"{response.status_code} {response.text[:200]}")

    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(client) for _ in range(concurrency)]
        while not done(time.monotonic() - start):
            time.sleep(0.25)
        stop.set()
        for future in futures:
            future.result()
    return result


def ramp(
    timeline: Timeline,
    url: str,
    token: str,
    media: Path,
    steps: Sequence[tuple[int, float]],
    name: str,
    fields: Mapping[str, str] | None = None,
    until: tuple[str, int, float] | None = None,
) -> LoadResult:
    """Run ``(concurrency, seconds)`` steps in turn, labelling the timeline's phases.

    With ``until=(deployment, replicas, max_s)`` the last step goes on (up to ``max_s``)
    until ``deployment`` has ``replicas`` running and then for its own seconds more, so
    that slow replica starts on a loaded machine still show the scale-out under load.
    """
    total = LoadResult()
    for i, (concurrency, seconds) in enumerate(steps):
        timeline.phase = f"{name} x{concurrency}"
        if until is not None and i == len(steps) - 1:
            done = _hold_after(timeline, *until, hold_s=seconds)
        else:
            done = _after(seconds)
        step = analyze_load(url, token, media, concurrency, done, fields)
        total.ok += step.ok
        total.errors += step.errors
    timeline.phase = "idle"
    return total


def _after(seconds: float) -> Callable[[float], bool]:
    return lambda elapsed: elapsed >= seconds


def _hold_after(
    timeline: Timeline, name: str, replicas: int, max_s: float, hold_s: float
) -> Callable[[float], bool]:
    reached: list[float] = []

    def done(elapsed: float) -> bool:
        if not reached and timeline.sample().replicas.get(name, 0) >= replicas:
            reached.append(elapsed)
        return elapsed >= max_s or bool(reached and elapsed - reached[0] >= hold_s)

    return done


def upload(url: str, token: str, video: Path) -> str:
    """Upload ``video`` through a signed URL; returns the URL (a job's ``input_url``)."""
    signed = httpx.post(
        f"{url}/video_upload_signed_url/",
        params={"api_key": token},
        json={"file_name": video.name},
        timeout=30,
    )
    signed.raise_for_status()
    upload_url = str(signed.json()["signed_url"])
    httpx.put(upload_url, content=video.read_bytes(), timeout=60).raise_for_status()
    return upload_url


def submit_jobs(url: str, token: str, input_url: str, count: int, infer_fps: float) -> list[str]:
    """``count`` face-detection jobs on one uploaded video; returns their ids."""
    models = [{"model_id": "face-detection", "model_version": "1"}]
    ids = []
    for _ in range(count):
        response = httpx.post(
            f"{url}/videoinfer/",
            params={"api_key": token},
            json={"input_url": input_url, "infer_fps": infer_fps, "models": models},
            timeout=30,
        )
        response.raise_for_status()
        ids.append(str(response.json()["job_id"]))
    return ids


def job_statuses(url: str, token: str, ids: Sequence[str]) -> list[int]:
    """The API's status codes (0 done, 1 running or queued, other: failed)."""
    return [
        int(
            httpx.get(
                f"{url}/videoinfer/", params={"api_key": token, "job_id": job_id}, timeout=30
            ).json()["status"]
        )
        for job_id in ids
    ]
