"""Long-video summaries on Ray Serve: 1 vs 2 VisionLanguageModel replicas.

The app graph as shipped (``build_graph``, every replica at its default 0.25 CPU,
``summaries.chunks_in_flight`` 4, so up to 4 chunk captions wait on the model at once),
the tiny model, the Story API off (the reduce step then runs on the vision model, as
the JobRunner does without a story model), ``max_request_bytes`` raised so that the
video can be uploaded (see :data:`MAX_REQUEST_BYTES`). Per replica count: deploy, upload the video
through a signed URL, ``POST /api/video_summaries``, poll its status until it
succeeds; the time from the submit to success is the measure. Each run gets a fresh
data directory (its own database and blobs) so nothing carries over.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scripts.bench.env import ACCOUNT_SETTINGS, Cluster, tiny_profile

APP = "bench-long-video"


@dataclass(frozen=True)
class ServeRun:
    replicas: int
    deploy_s: float
    upload_s: float
    job_s: float
    chunks: int
    frames: int
    error: str = ""


#: Signed uploads are capped by ``max_request_bytes`` too (110 MiB by default), below a
#: 10-minute 720p video at 2 Mbit/s (152 MB): raised to the video size cap (2 GiB).
MAX_REQUEST_BYTES = 2048 * 1024 * 1024


def _settings(data_dir: Path, chunks_in_flight: int) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir),
        "max_request_bytes": MAX_REQUEST_BYTES,
        "accounts": {**ACCOUNT_SETTINGS, "rate_limit_per_s": 1000, "rate_limit_burst": 1000},
        "jobs": {"poll_interval_s": 0.2, "concurrent_jobs": 1},
        "summaries": {"chunks_in_flight": chunks_in_flight},
    }


def _token(settings: dict[str, Any]) -> str:
    from tests.support.graphs import create_api_token

    return create_api_token(settings, "bench", credits=100_000)[0]


def _upload(client: httpx.Client, video: Path) -> str:
    signed = client.post("/video_upload_signed_url/", json={"file_name": video.name})
    signed.raise_for_status()
    url = str(signed.json()["signed_url"])
    with video.open("rb") as body:
        httpx.put(url, content=body, timeout=600).raise_for_status()
    return url


def _wait(client: httpx.Client, job_id: str, deadline: float) -> dict[str, Any]:
    while True:
        status: dict[str, Any] = client.get(f"/api/video_summaries/{job_id}").json()
        if status["job_status"] in ("succeeded", "failed", "cancelled"):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"summary {job_id} not done in time: {status['job_status']}")
        time.sleep(0.25)


def measure(
    cluster: Cluster,
    cache: Path,
    work: Path,
    video: Path,
    replicas: int,
    chunks_in_flight: int,
    timeout_s: float,
) -> ServeRun:
    """One deployment with ``replicas`` VisionLanguageModel replicas, one summary."""
    from ray import serve

    from serve_app.app import AppArgs, ModelEntry, build_graph

    data_dir = Path(tempfile.mkdtemp(prefix=f"serve-x{replicas}-", dir=work))
    settings = _settings(data_dir, chunks_in_flight)
    token = _token(settings)
    args = AppArgs(
        models=[ModelEntry(profile=tiny_profile(cache))], story_model=None, settings=settings
    )
    options = {"VisionLanguageModel": {"num_replicas": replicas}}
    began = time.perf_counter()
    serve.run(build_graph(args, options), name=APP, route_prefix="/")
    deployed = time.perf_counter()
    base = f"http://127.0.0.1:{cluster.port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            url = _upload(client, video)
            uploaded = time.perf_counter()
            submitted = client.post("/api/video_summaries", json={"input_url": url})
            submitted.raise_for_status()
            started = time.perf_counter()
            status = _wait(client, submitted.json()["job_id"], time.monotonic() + timeout_s)
            ended = time.perf_counter()
        result = status.get("result") or {}
        return ServeRun(
            replicas=replicas,
            deploy_s=round(deployed - began, 1),
            upload_s=round(uploaded - deployed, 1),
            job_s=round(ended - started, 1),
            chunks=len(result.get("chunks") or []),
            frames=(result.get("sampling") or {}).get("frames_used", 0),
            error="" if status["job_status"] == "succeeded" else str(status["error_message"]),
        )
    finally:
        serve.delete(APP)
