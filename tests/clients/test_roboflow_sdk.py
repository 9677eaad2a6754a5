"""The official roboflow SDK (from PyPI, unmodified) against the real Serve graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients.conftest import Service
from tests.support.job_videos import make_astronaut_video

pytest.importorskip("roboflow", reason="the roboflow SDK comes with the test extra")
pytestmark = [pytest.mark.ray, pytest.mark.slow]
FLOW = Path(__file__).with_name("roboflow_flow.py")


def test_sdk_video_flow(service: Service, tmp_path: Path) -> None:
    video = make_astronaut_video(tmp_path / "astronaut.mp4", frames=30)
    env = {
        **os.environ,
        "API_URL": service.url,
        "ROBOFLOW_CONFIG_DIR": str(tmp_path / "roboflow.json"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    run = subprocess.run(
        [sys.executable, str(FLOW), service.token, "face-detection", str(video)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert out["workspace"] == service.username
    assert out["project"] == f"{service.username}/face-detection"
    assert out["project_type"] == "object-detection"
    assert out["signed_url"].startswith(f"{service.url}/uploads/")
    assert int(out["expires"]) > 0
    assert out["url"] == out["signed_url"] and out["url_job"] != out["job_id"]
    for results in (out["from_file"], out["from_url"]):
        # The results JSON: the model's detections per sampled frame.
        assert "face-detection" in results, results
        assert results["frame_offsets"], results
        assert len(results["face-detection"]) == len(results["frame_offsets"])
        assert any(frame["predictions"] for frame in results["face-detection"])
