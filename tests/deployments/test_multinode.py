"""Two Ray nodes that share no data directory: every byte crosses in Ray or in S3.

A head raylet (``head_node`` resource) hosts the Ingress; a worker raylet
(``worker_node``, its own ``SERVE_APP_NODE_DATA_DIR``) hosts FrameExtractor,
VisionLanguageModel, StoryWriter, Detector and JobRunner. Both are ``ray start``
subprocesses of this module, stopped by their pids; the deploying driver runs in a
process of its own (:mod:`tests.support.ray_nodes` says why). Users, tokens and jobs
live in PostgreSQL, job inputs and results in moto's S3 server: the services a real
multi-node deployment shares. Large media cross from the Ingress's spool to the
extractor's node through Ray's object store (inline_media_bytes is 8 KiB here).

Both nodes run on this one machine, so a path would still resolve: what shows that no
replica reads the other's directory is that each node's data directory is distinct
and the worker's spool is where shipped files land (and are removed).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.clients.chunked_upload import ChunkUploader, UploadOptions
from tests.support.databases import drop_schema, new_schema
from tests.support.graphs import FAST_ACCOUNTS, create_api_token
from tests.support.job_videos import make_astronaut_video
from tests.support.media_files import make_image, make_video
from tests.support.ray_nodes import RayNodes, cluster_environment, free_port
from tests.support.s3_server import CREDENTIALS, REGION, s3_client

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "multinode"
INLINE_BYTES = 8 * 1024
ON_WORKER = {"ray_actor_options": {"resources": {"worker_node": 0.01}}}
ON_HEAD = {"ray_actor_options": {"resources": {"head_node": 0.01}}}
WORKER_DEPLOYMENTS = (
    "FrameExtractor",
    "VisionLanguageModel",
    "StoryWriter",
    "Detector",
    "JobRunner",
)
OBJECT_STORE_BYTES = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def nodes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("multinode")


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> Iterator[str]:
    schema = new_schema(postgres_url)
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        drop_schema(postgres_url, schema)


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = "multinode-jobs"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def settings(nodes_dir: Path, database_url: str, s3_endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "data_dir": str(nodes_dir / "head-data"),
        "database_url": database_url,
        "inline_media_bytes": INLINE_BYTES,
        # Secrets shared by configuration, not by a file in a shared directory.
        "accounts": {**FAST_ACCOUNTS, "session_secret": "s" * 32},
        "uploads": {"max_chunk_bytes": 1024 * 1024},
        "jobs": {
            "blob_store": "s3",
            "s3": {"bucket": bucket, "endpoint_url": s3_endpoint, "region": REGION},
            "url_secret": "u" * 32,
            "poll_interval_s": 0.2,
            "batch_frames": 4,
            "heartbeat_s": 1.0,
        },
    }


@pytest.fixture(scope="module")
def token(settings: dict[str, Any]) -> str:
    return create_api_token(settings, "multinode", admin=True)[0]


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, nodes_dir: Path, settings: dict[str, Any], token: str
) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """The URL of the app on the two-node cluster, and where its replicas run."""
    # Unix socket paths must stay short: Ray's temp dir gets a short name of its own.
    temp_dir = Path(tempfile.mkdtemp(prefix="raymn-", dir="/tmp"))
    aws = {
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
    }
    nodes = RayNodes(temp_dir, {**cluster_environment(temp_dir), **aws})
    try:
        # The tiny model (a session fixture) is built while the head starts.
        head = nodes.start_head(1, {"head_node": 1}, {}, OBJECT_STORE_BYTES)
        model_dir = request.getfixturevalue("tiny_model_dir")
        head.wait_ready(180)
        worker_env = {"SERVE_APP_NODE_DATA_DIR": str(nodes_dir / "worker-data")}
        worker = nodes.start_worker(2, {"worker_node": 1}, worker_env, OBJECT_STORE_BYTES)
        worker.wait_ready(180)
        port = free_port()
        options = {name: ON_WORKER for name in WORKER_DEPLOYMENTS} | {"Ingress": ON_HEAD}
        payload = {
            "app": APP,
            "http_port": port,
            "model_dir": str(model_dir),
            "settings": settings,
            "options": options,
        }
        placement = nodes.run_driver("tests.support.multinode_driver", payload, timeout_s=240)
        yield f"http://127.0.0.1:{port}", placement
    finally:
        nodes.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def url(cluster: tuple[str, dict[str, list[str]]]) -> str:
    return cluster[0]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def analyze(url: str, token: str, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as f:
        return httpx.post(
            f"{url}/api/analyze",
            files={"file": (path.name, f)},
            data=fields,
            headers=auth(token),
            timeout=120,
        )


def test_replicas_run_on_the_nodes_they_were_placed_on(cluster, nodes_dir: Path) -> None:
    _, placement = cluster
    assert placement["Ingress"] == ["head"]
    for name in WORKER_DEPLOYMENTS:
        assert placement[name] == ["worker"], (name, placement)


def test_inline_image(url: str, token: str, tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.jpg", "jpeg", 96, 64)
    assert image.stat().st_size <= INLINE_BYTES
    response = analyze(url, token, image)
    assert response.status_code == 200, response.text
    assert response.json()["result"].strip()


def test_large_video_crosses_through_the_object_store(
    url: str, token: str, tmp_path: Path, nodes_dir: Path
) -> None:
    video = make_video(tmp_path / "big.mkv", container="mkv", frames=30, pattern="photo")
    assert video.stat().st_size > INLINE_BYTES
    response = analyze(url, token, video, interval="5")
    assert response.status_code == 200, response.text
    assert response.json()["sampling"]["frame_indices"] == [0, 5, 10, 15, 20, 25]
    # The shipped file landed in the worker's own spool and is gone again.
    worker_spool = nodes_dir / "worker-data" / "spool"
    assert worker_spool.is_dir() and list(worker_spool.glob("shipped-*")) == []
    assert not list((nodes_dir / "head-data").glob("spool/shipped-*"))


async def test_chunked_upload_then_analyze(url: str, token: str, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", frames=60, pattern="photo")
    size = video.stat().st_size
    assert size > INLINE_BYTES
    options = UploadOptions(chunk_bytes=-(-size // 3), upload_id="multinode-clip")
    async with httpx.AsyncClient(base_url=f"{url}/", headers=auth(token), timeout=120) as client:
        body = await ChunkUploader(client, options).upload(video)
    assert body["result"].strip()


def test_story_of_a_large_video(url: str, token: str, tmp_path: Path) -> None:
    video = make_video(tmp_path / "story.mp4", frames=30, pattern="photo")
    assert video.stat().st_size > INLINE_BYTES
    response = httpx.post(
        f"{url}/analyze/",
        files=[("files", (video.name, video.read_bytes()))],
        headers=auth(token),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["english"].strip() and body["thai"].strip()


def test_batch_job_from_a_signed_s3_upload(url: str, token: str, tmp_path: Path) -> None:
    video = make_astronaut_video(tmp_path / "astronaut.mp4", frames=30)
    key = {"api_key": token}
    signed = httpx.post(
        f"{url}/video_upload_signed_url/", params=key, json={"file_name": "astronaut.mp4"}
    )
    assert signed.status_code == 200, signed.text
    upload_url = signed.json()["signed_url"]
    assert not upload_url.startswith(url)  # straight to the bucket, not through the service
    assert httpx.put(upload_url, content=video.read_bytes(), timeout=30).status_code == 200
    models = [{"model_id": "face-detection", "model_version": "1"}]
    submitted = httpx.post(
        f"{url}/videoinfer/",
        params=key,
        json={"input_url": upload_url, "infer_fps": 5, "models": models},
        timeout=30,
    )
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["job_id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/videoinfer/", params={**key, "job_id": job_id}).json()
        if status["status"] != 1:
            break
        time.sleep(0.3)
    assert status["status"] == 0, status
    assert status["frames_done"] == status["frames_total"] == 5
    results = httpx.get(status["output_signed_url"], timeout=30).json()
    assert results["frame_offsets"] == [0, 6, 12, 18, 24]
    assert len(results["face-detection"]) == 5
