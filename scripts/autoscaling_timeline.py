"""Autoscaling timelines: replicas over time under an interactive ramp and a job backlog.

Starts its own Ray cluster (2 CPUs), deploys the graph of
``tests/deployments/test_autoscaling.py`` (delays of seconds, the tiny model) and prints
two Markdown tables sampled from ``serve.status()``:

1. interactive: describe requests (small images) ramping 2 → 12 clients, then a
   decode-heavy ramp of 6 clients (a 64 s 720p video, ~1900 frames decoded for 32
   tiny ones the model gets), then idle;
2. batch: jobs submitted to an idle (zero-replica) JobRunner, until drained and idle.

Run from the repository root::

    PYTHONPATH=$PWD python scripts/autoscaling_timeline.py [--jobs 6]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

APP, PREFIX = "timeline", "/timeline"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--hold-s", type=float, default=4.0, help="load kept after scale-out")
    args = parser.parse_args()

    import ray
    from ray import serve

    from serve_app.app import AppArgs, ModelEntry, build_graph
    from serve_app.engines.tiny_model import ensure_tiny_model
    from tests.support.autoscaling import (
        DECODE_HEAVY_FIELDS,
        JOB_SETTINGS,
        Timeline,
        autoscaling_profile,
        decode_heavy_video,
        graph_options,
        job_statuses,
        ramp,
        submit_jobs,
        upload,
    )
    from tests.support.graphs import FAST_ACCOUNTS, create_api_token
    from tests.support.job_videos import make_astronaut_video
    from tests.support.media_files import make_image

    root = Path(tempfile.mkdtemp(prefix="autoscaling-"))
    os.environ.setdefault("RAY_TMPDIR", str(root / "ray"))
    settings = {
        "data_dir": str(root / "data"),
        "accounts": {**FAST_ACCOUNTS, "rate_limit_per_s": 1000, "rate_limit_burst": 1000},
        "admission": {"max_requests_in_flight_per_user": 64},
        "jobs": JOB_SETTINGS,
    }
    token = create_api_token(settings, "admin", admin=True)[0]
    image = make_image(root / "small.jpg", "jpeg", 96, 64)
    video = decode_heavy_video(root)
    job_video = make_astronaut_video(root / "job.mp4", frames=90)
    model_dir = ensure_tiny_model(root / "tiny-qwen2.5-vl")
    print("load average before:", " / ".join(f"{x:.2f}" for x in os.getloadavg()))

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = 8123
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        model = ModelEntry(profile=autoscaling_profile(model_dir), max_batch_size=1)
        app_args = AppArgs(models=[model], story_model=None, settings=settings)
        serve.run(build_graph(app_args, graph_options()), name=APP, route_prefix=PREFIX)
        url = f"http://127.0.0.1:{port}{PREFIX}"
        names = ["FrameExtractor", "VisionLanguageModel", "JobRunner", "Detector"]

        interactive = Timeline(APP)
        with interactive.recording():
            interactive.wait_for("JobRunner", lambda n: n == 0, 60, "scaled to zero")
            ramp(
                interactive,
                url,
                token,
                image,
                [(2, 3), (12, args.hold_s)],
                "describe",
                until=("VisionLanguageModel", 2, 90),
            )
            interactive.wait_for("VisionLanguageModel", lambda n: n == 1, 60, "back to 1")
            ramp(
                interactive,
                url,
                token,
                video,
                [(6, args.hold_s)],
                "decode",
                DECODE_HEAVY_FIELDS,
                until=("FrameExtractor", 2, 90),
            )
            interactive.wait_for("FrameExtractor", lambda n: n == 1, 60, "back to 1")
        print("\n## Interactive ramp\n")
        print(interactive.table(names))

        batch = Timeline(APP)
        with batch.recording():
            input_url = upload(url, token, job_video)
            batch.phase = f"{args.jobs} jobs submitted"
            ids = submit_jobs(url, token, input_url, count=args.jobs, infer_fps=10)
            batch.wait_for(
                "JobRunner", lambda _: 1 not in job_statuses(url, token, ids), 300, "drained"
            )
            batch.phase = "idle"
            batch.wait_for("JobRunner", lambda n: n == 0, 60, "back to zero")
            time.sleep(1)
        print("\n## Batch backlog\n")
        print(batch.table(names))
        print("\njob statuses:", job_statuses(url, token, ids))
    finally:
        print("load average after:", " / ".join(f"{x:.2f}" for x in os.getloadavg()))
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
