"""The jobs page against an S3 blob store on another origin, in headless Chromium.

The service (real app, tiny model, a job worker in the same process) and moto's S3
server listen on two loopback ports, so the page (service origin) uploads the video
to a presigned URL on the bucket's origin. The ``PUT`` is not a simple request:
Chromium sends a preflight ``OPTIONS`` first, and only the bucket's CORS rule
(``serve-app s3-cors``, here :func:`put_bucket_cors`) lets it through. Without the
rule the upload fails in the browser and no job is made; with it the video lands in
the bucket, the job runs, and the page reads the results from their presigned S3 URL.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from serve_app.accounts.context import open_accounts
from serve_app.accounts.users import create_user
from serve_app.config import Settings
from serve_app.engines.factory import build_engine
from serve_app.frame_models.backends import LocalDetector
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.registry import DetectorRegistry
from serve_app.http.app import create_app
from serve_app.jobs.context import JobsContext
from serve_app.jobs.worker.executor import JobExecutor
from serve_app.jobs.worker.frame_models import FrameModels
from serve_app.jobs.worker.loop import JobWorker
from serve_app.pipeline.describe import DescribePipeline
from serve_app.storage.blob import S3BlobStore
from serve_app.storage.bucket_cors import put_bucket_cors
from tests.support.browser import DESKTOP, PageProblems, screenshot
from tests.support.graphs import FAST_ACCOUNTS, tiny_profile
from tests.support.job_videos import make_astronaut_video
from tests.support.s3_server import s3_client

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-password"


@dataclass(frozen=True)
class Service:
    url: str
    s3_endpoint: str
    bucket: str
    store: S3BlobStore


@pytest.fixture(scope="module")
def service(
    tiny_model_dir: Path, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """The app with jobs on the S3 store, and its job worker, on a loopback port."""
    bucket = f"web-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    store = S3BlobStore(bucket, prefix="svc/", client=s3_client(s3_endpoint))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    box: dict[str, Any] = {}

    async def run() -> None:
        profile = tiny_profile(tiny_model_dir, max_new_tokens=8)
        engine = build_engine(profile, tiny_model_dir.parent)
        await engine.start()
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("web-s3"),
            accounts={**FAST_ACCOUNTS, "rate_limit_burst": 10_000},
            jobs={"poll_interval_s": 0.2, "batch_frames": 4, "heartbeat_s": 1.0},
        )
        accounts = open_accounts(settings)
        create_user(accounts.database, accounts.passwords, "alice", PASSWORD, credits=100)
        catalog = FrameModelCatalog.from_yaml(ROOT / "configs/detectors.yaml")
        jobs = JobsContext.build(settings, accounts.database, catalog, blobs=store)
        detector = LocalDetector(DetectorRegistry(catalog))
        worker = JobWorker(jobs, JobExecutor(jobs, FrameModels(detector)))
        pipeline = DescribePipeline.in_process(
            {profile.name: (profile, engine)}, profile.name, settings.media
        )
        app = create_app(pipeline, settings, accounts, jobs=jobs)
        working = asyncio.ensure_future(worker.run_forever())
        try:
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
            box["server"] = server
            await server.serve(sockets=[sock])
        finally:
            await worker.stop()
            working.cancel()
            await asyncio.gather(working, return_exceptions=True)
            accounts.close()
            await engine.shutdown()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not (box.get("server") and box["server"].started):
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield Service(f"http://127.0.0.1:{port}", s3_endpoint, bucket, store)
    finally:
        box["server"].should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_astronaut_video(tmp_path_factory.mktemp("web-s3-video") / "astronaut.mp4")


@pytest.fixture
def page(browser, service: Service) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    login = context.request.post(
        f"{service.url}/login", data={"username": "alice", "password": PASSWORD}
    )
    assert login.status == 200, login.text()
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def uploads_in_bucket(service: Service) -> list[str]:
    listing = s3_client(service.s3_endpoint).list_objects_v2(
        Bucket=service.bucket, Prefix="svc/uploads/"
    )
    return [item["Key"] for item in listing.get("Contents", [])]


def submit(page: Any, service: Service, video: Path) -> None:
    page.goto(f"{service.url}/ui/jobs")
    page.set_input_files("#job-file", str(video))
    page.check("input[value='face-detection']")
    page.fill("#job-fps", "5")
    page.click("#job-submit")


def test_without_the_cors_rule_the_browser_refuses_the_upload(
    page: Any, service: Service, video: Path
) -> None:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    submit(page, service, video)
    error = page.locator("#job-error")
    error.wait_for(state="visible")
    assert "could not be reached" in error.inner_text()
    page.wait_for_timeout(200)  # the console message may trail the failure
    assert any("blocked by CORS policy" in line for line in console), console
    assert uploads_in_bucket(service) == [], "the preflight failed: the PUT was never sent"
    assert page.locator("#recent-body tr").count() == 0


def test_with_the_rule_the_page_uploads_to_the_bucket_and_the_job_runs(
    page: Any, service: Service, video: Path
) -> None:
    put_bucket_cors(service.store, [service.url])
    problems = PageProblems()
    problems.watch(page)
    to_s3: list[str] = []
    page.on(
        "requestfinished",
        lambda request: (
            request.url.startswith(service.s3_endpoint)
            and to_s3.append(f"{request.method} {request.url.split('?')[0]}")
        ),
    )
    submit(page, service, video)
    page.wait_for_selector("#job-view:visible")
    page.wait_for_function(
        "() => document.getElementById('job-status').textContent === 'succeeded'",
        timeout=120_000,
    )
    page.wait_for_function(
        "() => /face-detection: \\d+ box/.test("
        "document.getElementById('frame-caption').textContent)"
    )
    [uploaded] = uploads_in_bucket(service)
    bucket_url = f"{service.s3_endpoint}/{service.bucket}"
    assert f"PUT {bucket_url}/{uploaded}" in to_s3, to_s3
    assert any(r.startswith(f"GET {bucket_url}/svc/results/") for r in to_s3), to_s3
    assert page.locator("#job-download").get_attribute("href").startswith(bucket_url)
    assert "10 frames" in page.locator("#job-progress-text").inner_text()
    screenshot(page, "jobs-s3-result-desktop")
    assert problems.errors == []
