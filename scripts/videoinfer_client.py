#!/usr/bin/env python
"""Run a batch video inference job: upload, submit, poll with a progress bar, download.

    python scripts/videoinfer_client.py clip.mp4 --api-key sa_... \\
        --model face-detection:1 --model people-detection --infer-fps 5 -o results.json

``--input-url https://...`` submits a public video instead of uploading a file. Models
are ``model_id[:version]``; ``--vlm model_id`` adds a per-frame captioner. The job's
status body is printed as JSON at the end; the exit status is 0 only on success.
Needs only httpx.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx


class JobFailed(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(f"{body.get('error_code')}: {body.get('error_message')}")
        self.body = body


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise SystemExit(f"HTTP {response.status_code}: {detail}")
    body: dict[str, Any] = response.json()
    return body


def upload(client: httpx.Client, video: Path, api_key: str) -> str:
    """Upload ``video`` through a signed URL; returns that URL (the job's input_url)."""
    signed = _check(
        client.post(
            "video_upload_signed_url/", params={"api_key": api_key}, json={"file_name": video.name}
        )
    )["signed_url"]
    with video.open("rb") as f:
        # A bare client: the signed URL may point at another host (S3) and needs no key.
        response = httpx.put(signed, content=f, timeout=client.timeout)
    if response.status_code >= 400:
        raise SystemExit(f"upload failed: HTTP {response.status_code}: {response.text[:300]}")
    return str(signed)


def model_specs(models: list[str], vlms: list[str]) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for text in models:
        model_id, _, version = text.partition(":")
        spec: dict[str, Any] = {"model_id": model_id, "inference_type": "object-detection"}
        if version:
            spec["model_version"] = version
        specs.append(spec)
    specs += [{"model_id": m, "inference_type": "vlm"} for m in vlms]
    return specs


def _bar(done: int, total: int | None, state: str, out: TextIO) -> None:
    width = 30
    filled = int(width * done / total) if total else 0
    shown = f"{done}/{total}" if total else "?"
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {shown} frames  {state:<10}")
    out.flush()


def wait(
    client: httpx.Client,
    api_key: str,
    job_id: str,
    *,
    poll_s: float = 1.0,
    timeout_s: float = 3600.0,
    out: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Poll until the job ends; returns its final status body. Raises JobFailed."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = _check(client.get("videoinfer/", params={"api_key": api_key, "job_id": job_id}))
        _bar(body.get("frames_done", 0), body.get("frames_total"), body["job_status"], out)
        if body["status"] != 1:
            out.write("\n")
            if body["status"] != 0:
                raise JobFailed(body)
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still running after {timeout_s:.0f} s")
        time.sleep(poll_s)


def run(
    client: httpx.Client,
    api_key: str,
    *,
    video: Path | None = None,
    input_url: str | None = None,
    models: list[dict[str, Any]],
    infer_fps: float,
    output: Path | None = None,
    poll_s: float = 1.0,
    timeout_s: float = 3600.0,
    out: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Upload (or use ``input_url``), submit, wait, and download the results.

    Returns ``{"status": <final status body>, "results": <results JSON>}``.
    """
    if input_url is None:
        assert video is not None, "give a video file or an input_url"
        input_url = upload(client, video, api_key)
    submitted = _check(
        client.post(
            "videoinfer/",
            params={"api_key": api_key},
            json={"input_url": input_url, "infer_fps": infer_fps, "models": models},
        )
    )
    out.write(f"job {submitted['job_id']} submitted\n")
    final = wait(client, api_key, submitted["job_id"], poll_s=poll_s, timeout_s=timeout_s, out=out)
    results = _check(httpx.get(final["output_signed_url"], timeout=client.timeout))
    if output is not None:
        output.write_text(json.dumps(results))
        out.write(f"results written to {output}\n")
    return {"status": final, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", nargs="?", type=Path, help="the video file to upload")
    parser.add_argument("--input-url", help="a public video URL instead of a file")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", action="append", default=[], help="model_id[:version]")
    parser.add_argument("--vlm", action="append", default=[], help="a vlm captioner model_id")
    parser.add_argument("--infer-fps", type=float, default=1.0)
    parser.add_argument("-o", "--output", type=Path, help="where to write the results JSON")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    if (args.video is None) == (args.input_url is None):
        parser.error("give either a video file or --input-url")
    if not args.model and not args.vlm:
        parser.error("give at least one --model or --vlm")
    base = args.base_url if args.base_url.endswith("/") else args.base_url + "/"
    with httpx.Client(base_url=base, timeout=600) as client:
        try:
            result = run(
                client,
                args.api_key,
                video=args.video,
                input_url=args.input_url,
                models=model_specs(args.model, args.vlm),
                infer_fps=args.infer_fps,
                output=args.output,
                poll_s=args.poll,
                timeout_s=args.timeout,
            )
        except JobFailed as failed:
            print(json.dumps(failed.body, indent=2))
            return 1
    print(json.dumps(result["status"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
