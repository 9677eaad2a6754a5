"""Batch video jobs end to end on the real Ray Serve graph (Detector + JobRunner)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_app.accounts.context import open_accounts
from serve_app.app import AppArgs, ModelEntry, build_app
from serve_app.config import Settings
from tests.support.graphs import FAST_ACCOUNTS, create_api_token, tiny_profile
from tests.support.job_videos import expected_face, make_astronaut_video
from tests.support.media_files import make_video

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "videojobs"
PREFIX = "/videojobs"
FRAMES = 60


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> dict[str, object]:
    return {
        "data_dir": str(tmp_path_factory.mktemp("jobs-graph")),
        "accounts": FAST_ACCOUNTS,
        "jobs": {"poll_interval_s": 0.2, "batch_frames": 4, "heartbeat_s": 1.0},
    }


@pytest.fixture(scope="module")
def account(settings) -> tuple[str, int]:
    return create_api_token(settings, "batch", credits=100)


@pytest.fixture(scope="module")
def url(ray_serve: int, tiny_model_dir: Path, settings, account) -> Iterator[str]:
    from ray import serve

    profile = tiny_profile(tiny_model_dir, max_new_tokens=8)
    args = AppArgs(models=[ModelEntry(profile=profile)], story_model=None, settings=settings)
    serve.run(build_app(args), name=APP, route_prefix=PREFIX)
    try:
        yield f"http://127.0.0.1:{ray_serve}{PREFIX}"
    finally:
        serve.delete(APP)


def test_upload_submit_poll_download(url: str, account, settings, tmp_path: Path) -> None:
    token, user_id = account
    video = make_astronaut_video(tmp_path / "astronaut.mp4", frames=FRAMES)
    key = {"api_key": token}
    signed = httpx.post(
        f"{url}/video_upload_signed_url/", params=key, json={"file_name": "astronaut.mp4"}
    )
    assert signed.status_code == 200, signed.text
    upload_url = signed.json()["signed_url"]
    assert upload_url.startswith(f"{url}/uploads/")
    tampered = httpx.put(upload_url.replace("sig=", "sig=A"), content=video.read_bytes())
    assert tampered.status_code == 403
    put = httpx.put(upload_url, content=video.read_bytes(), timeout=30)
    assert put.status_code == 200, put.text

    models = [
        {"model_id": "face-detection", "model_version": "1", "inference_type": "object-detection"},
        {"model_id": "people-detection", "model_version": "1"},
        {"model_id": "frame-captioner", "inference_type": "vlm"},
    ]
    submitted = httpx.post(
        f"{url}/videoinfer/",
        params=key,
        json={"input_url": upload_url, "infer_fps": 5, "models": models},
        timeout=30,
    )
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["job_id"]

    deadline = time.monotonic() + 120
    seen = set()
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/videoinfer/", params={**key, "job_id": job_id}).json()
        seen.add(body["status"])
        if body["status"] != 1:
            break
        time.sleep(0.3)
    assert body["status"] == 0, body
    assert body["frames_done"] == body["frames_total"] == 10
    assert body["credits_charged"] == 30

    doc = httpx.get(body["output_signed_url"], timeout=30).json()
    assert doc["frame_offsets"] == list(range(0, FRAMES, 6))
    assert doc["time_offsets"] == [round(i / 30, 4) for i in doc["frame_offsets"]]
    lengths = {name: len(values) for name, values in doc.items()}
    assert set(lengths.values()) == {10}, lengths
    for index, entry in zip(doc["frame_offsets"], doc["face-detection"], strict=True):
        assert entry["image"] == {"width": 480, "height": 360}
        x, y, _ = expected_face(index, FRAMES)
        assert any(
            abs(p["x"] - x) < 6 and abs(p["y"] - y) < 6 and p["class"] == "face"
            for p in entry["predictions"]
        ), (index, entry)
    assert all(isinstance(e["predictions"], list) for e in doc["people-detection"])
    captions = doc["frame-captioner"]
    assert all(set(c) == {"time", "text", "input_tokens", "output_tokens"} for c in captions)

    accounts = open_accounts(Settings(**settings))  # type: ignore[arg-type]
    try:
        assert accounts.credits.balance(user_id) == 70 == accounts.credits.ledger_sum(user_id)
    finally:
        accounts.close()


def test_both_job_deployments_run(url: str, account) -> None:
    from ray import serve

    status = serve.status().applications[APP]
    assert {"Detector", "JobRunner"} <= set(status.deployments)
    assert all(d.status == "HEALTHY" for d in status.deployments.values())


def test_the_client_script_runs_a_job(url: str, account, tmp_path: Path) -> None:
    import importlib.util
    import io

    path = Path(__file__).resolve().parents[2] / "scripts" / "videoinfer_client.py"
    spec = importlib.util.spec_from_file_location("videoinfer_client", path)
    assert spec is not None and spec.loader is not None
    client_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client_module)

    video = make_astronaut_video(tmp_path / "short.mp4", frames=30)
    progress = io.StringIO()
    with httpx.Client(base_url=f"{url}/", timeout=60) as client:
        result = client_module.run(
            client,
            account[0],
            video=video,
            models=client_module.model_specs(["face-detection:1"], []),
            infer_fps=2,
            output=tmp_path / "results.json",
            poll_s=0.2,
            timeout_s=120,
            out=progress,
        )
    assert result["status"]["status"] == 0
    assert result["results"]["frame_offsets"] == [0, 15]
    assert "frames" in progress.getvalue()
    assert (tmp_path / "results.json").is_file()


def test_a_long_video_summary_runs_on_the_job_runner(url: str, account, tmp_path: Path) -> None:
    """Chunks captioned through the VisionLanguageModel handle, the reduce step on the
    same model (this graph has no StoryWriter), results streamed and exported."""
    token, _ = account
    auth = {"Authorization": f"Bearer {token}"}
    video = make_video(tmp_path / "counter.mp4", width=160, height=120, fps=30, frames=120)
    signed = httpx.post(
        f"{url}/video_upload_signed_url/", headers=auth, json={"file_name": "counter.mp4"}
    ).json()["signed_url"]
    assert httpx.put(signed, content=video.read_bytes(), timeout=30).status_code == 200
    body = {"input_url": signed, "chunk_s": 2, "frames_per_chunk": 2}
    submitted = httpx.post(f"{url}/api/video_summaries", headers=auth, json=body, timeout=30)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    with httpx.stream(
        "GET", f"{url}/api/video_summaries/{job_id}/events", headers=auth, timeout=120
    ) as stream:
        text = "".join(stream.iter_text())
    events = [
        line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event:")
    ]
    assert events.count("chunk") == 2 and events[-3:] == ["chapters", "summary", "done"]
    done = httpx.get(f"{url}/api/video_summaries/{job_id}", headers=auth).json()
    assert done["job_status"] == "succeeded" and done["chunks_done"] == 2
    chunks = done["result"]["chunks"]
    assert [c["frame_indices"] for c in chunks] == [[15, 45], [75, 105]]
    assert done["result"]["chapters"][-1]["end_s"] == 4.0
    vtt = httpx.get(f"{url}/api/video_summaries/{job_id}/export.vtt", headers=auth)
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
