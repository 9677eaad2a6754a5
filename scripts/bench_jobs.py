#!/usr/bin/env python
"""Video job throughput through the running CPU service vs. a plain single-process loop.

    python scripts/bench_jobs.py                 # 60 s of 1280x720 at 30 fps, infer_fps=5
    python scripts/bench_jobs.py --seconds 20    # quicker

1. Makes an H.264 video (a pan and zoom over scikit-image's astronaut photo).
2. Starts a local Ray cluster and the service graph (``build_app``, CPU profile).
3. Plain loop: in this process, decode the frames at ``infer_fps`` and run the same
   face detector (``DetectorRegistry``) on each, one after the other.
4. Service: upload by signed URL, submit a ``face-detection`` job, poll until done.
   Throughput = frames / (time from submit to status 0).

Prints both rates and their ratio (the target is >= 0.7) and one JSON line. Everything
it starts (Ray, temp files) is stopped and removed at the end; ``--timeout`` bounds
the whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import av
import cv2
import httpx
import numpy as np

from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.registry import DetectorRegistry
from serve_app.frame_models.resolved import detector_model
from serve_app.frame_models.spec import ModelSpec
from serve_app.media.limits import MediaLimits
from serve_app.media.probe import probe_video
from serve_app.media.stream import iter_frames, plan_frames

ROOT = Path(__file__).resolve().parent.parent
MODEL = "face-detection"


def make_video(path: Path, seconds: float, width: int, height: int, fps: int) -> Path:
    """H.264 MP4: the astronaut photo panned and zoomed (a face in every frame)."""
    from PIL import Image
    from skimage import data_dir

    photo = np.asarray(Image.open(Path(data_dir) / "astronaut.png").convert("RGB"))
    frames = round(seconds * fps)
    with av.open(str(path), "w", format="mp4") as out:
        stream: Any = out.add_stream("libx264", fps, options={"preset": "ultrafast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(frames):
            t = i / max(1, frames - 1)
            scale = height / 512 * (1.3 - 0.5 * t)
            matrix = np.array([[scale, 0, width * 0.3 * t], [0, scale, -40 * t]], np.float32)
            rgb = cv2.warpAffine(photo, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def plain_loop(video: Path, infer_fps: float, batch: int) -> dict[str, float]:
    """Decode at ``infer_fps`` and detect, sequentially, in this process."""
    catalog = FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")
    registry = DetectorRegistry(catalog)
    registry.warm_up()
    limits = MediaLimits(decode_timeout_s=3600)
    spec = ModelSpec(model_id=MODEL)
    model = detector_model(catalog.resolve(spec), spec)
    started = time.perf_counter()
    info = probe_video(video, limits)
    plan = plan_frames(video, info, infer_fps, limits)
    frames, detect_s, faces = 0, 0.0, 0
    for chunk in iter_frames(video, info, plan, batch, limits):
        t0 = time.perf_counter()
        entries = registry.run(model, chunk.frames, (info.width, info.height))
        detect_s += time.perf_counter() - t0
        frames += len(entries)
        faces += sum(1 for e in entries if e and e["predictions"])
    elapsed = time.perf_counter() - started
    return {
        "frames": frames,
        "seconds": elapsed,
        "fps": frames / elapsed,
        "detect_only_fps": frames / detect_s,
        "frames_with_face": faces,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_run(base: str, token: str, video: Path, infer_fps: float, deadline: float) -> dict:
    key = {"api_key": token}
    with httpx.Client(base_url=base, timeout=600) as client:
        signed = client.post("video_upload_signed_url/", params=key, json={"file_name": "b.mp4"})
        signed.raise_for_status()
        url = signed.json()["signed_url"]
        with video.open("rb") as f:
            httpx.put(url, content=f, timeout=600).raise_for_status()
        body = {"input_url": url, "infer_fps": infer_fps, "models": [{"model_id": MODEL}]}
        started = time.perf_counter()
        submitted = client.post("videoinfer/", params=key, json=body)
        submitted.raise_for_status()
        job_id = submitted.json()["job_id"]
        while True:
            status = client.get("videoinfer/", params={**key, "job_id": job_id}).json()
            if status["status"] != 1:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the job did not finish within --timeout")
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        if status["status"] != 0:
            raise RuntimeError(f"job failed: {status}")
        results = httpx.get(status["output_signed_url"], timeout=600).json()
    frames = len(results["frame_offsets"])
    faces = sum(1 for e in results[MODEL] if e and e["predictions"])
    return {
        "frames": frames,
        "seconds": elapsed,
        "fps": frames / elapsed,
        "frames_with_face": faces,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--infer-fps", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=16, help="frames per model call")
    parser.add_argument("--timeout", type=float, default=1200.0, help="bound on the whole run")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    ray_started = False
    try:
        t0 = time.perf_counter()
        video = make_video(work / "bench.mp4", args.seconds, args.width, args.height, args.fps)
        print(
            f"video: {args.seconds:g} s {args.width}x{args.height}@{args.fps} "
            f"({video.stat().st_size / 1e6:.1f} MB, made in {time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
        )
        import ray
        from ray import serve

        from serve_app.accounts.context import open_accounts
        from serve_app.accounts.users import create_user
        from serve_app.app import AppArgs, build_app
        from serve_app.config import Settings

        settings: dict[str, Any] = {
            "data_dir": str(work / "data"),
            "jobs": {"batch_frames": args.batch, "poll_interval_s": 0.2},
            "accounts": {"argon2_time_cost": 1, "argon2_memory_kib": 8},
        }
        accounts = open_accounts(Settings(**settings))
        admin = create_user(
            accounts.database, accounts.passwords, "bench", "bench-pw", is_admin=True
        )
        token = accounts.tokens.create(admin.id, "bench").token
        accounts.close()

        os.environ.setdefault("RAY_TMPDIR", str(work / "ray"))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_started = True
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(AppArgs(story_model=None, settings=settings)), route_prefix="/")
        print("service up; plain loop...", file=sys.stderr)

        plain = plain_loop(video, args.infer_fps, args.batch)
        print(f"plain loop: {plain['frames']} frames in {plain['seconds']:.1f} s", file=sys.stderr)
        job = service_run(f"http://127.0.0.1:{port}/", token, video, args.infer_fps, deadline)
        ratio = job["fps"] / plain["fps"]
        print(
            f"plain single-process loop : {plain['fps']:6.2f} frames/s "
            f"(detection alone {plain['detect_only_fps']:.2f} frames/s)"
        )
        print(
            f"job through the service   : {job['fps']:6.2f} frames/s "
            f"({job['frames']} frames in {job['seconds']:.1f} s)"
        )
        print(f"ratio job / plain         : {ratio:6.2f}  (target >= 0.7)")
        print(
            json.dumps({"plain": plain, "job": job, "ratio": round(ratio, 3), "args": vars(args)})
        )
        return 0 if ratio >= 0.7 else 2
    finally:
        if ray_started:
            import ray
            from ray import serve

            serve.shutdown()
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
