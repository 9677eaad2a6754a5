"""The roboflow SDK's video inference flow, as its documentation shows it.

Run in its own process with ``API_URL`` set to the service (the SDK reads it once, at
import). Usage: ``python roboflow_flow.py API_KEY MODEL_ID VIDEO``; prints one JSON
object: the results of the local-file job and of the job submitted by URL.
"""

from __future__ import annotations

import json
import sys
import time
import types
import warnings

import roboflow.models.inference as sdk_inference
from roboflow import Roboflow


def poll(model, job_id: str, timeout_s: float = 240.0) -> dict:
    """``poll_for_video_results`` in a loop (the SDK's own loop sleeps 60 s a round)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        results = model.poll_for_video_results(job_id)
        if results:
            return results
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} did not finish")


def main(api_key: str, model_id: str, video: str) -> None:
    rf = Roboflow(api_key=api_key)
    project = rf.workspace().project(model_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # version.model (still documented)
        model = project.version(1).model
    job_id, signed_url, expires = model.predict_video(video, fps=5, prediction_type="batch-video")
    from_file = poll(model, job_id)
    # A video already online: the SDK submits the URL as it is.
    url_job, url, _ = model.predict_video(signed_url, fps=5, prediction_type="batch-video")
    # poll_until_video_results as shipped, its 60 s sleep shortened for the test.
    sdk_inference.time = types.SimpleNamespace(sleep=lambda _s: time.sleep(0.5))
    from_url = model.poll_until_video_results(url_job)
    out = {
        "workspace": rf.current_workspace,
        "project": project.id,
        "project_type": project.type,
        "job_id": job_id,
        "signed_url": signed_url,
        "expires": expires,
        "from_file": from_file,
        "url_job": url_job,
        "url": url,
        "from_url": from_url,
    }
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:4])
