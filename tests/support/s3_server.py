"""An S3-compatible HTTP server of the tests' own: moto's server mode on loopback.

MinIO is not installable here; moto (PyPI, ``moto[server]``) speaks the S3 protocol
over HTTP, presigned URLs, multipart uploads and CopyObject included. One server per
test session, started as a separate process on a free port and stopped by its pid;
each test gets a bucket of its own.

moto's server would add ``Access-Control-Allow-Origin: *`` to every answer (flask-cors);
``MOTO_DISABLE_GLOBAL_CORS`` turns that off, so browsers see only what the bucket's own
CORS configuration allows, as with S3. moto does not check presigned URLs' signatures
or expiry (see tests/storage/test_s3_server.py).

A pytest plugin (registered in ``tests/conftest.py``): request the fixtures by name.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

REGION = "us-east-1"
#: moto accepts any credentials; boto3 needs some to sign.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a running S3-compatible server (skips without moto)."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None:
        pytest.skip("moto[server] and boto3 are not installed (the dev extra has them)")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "MOTO_DISABLE_GLOBAL_CORS": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(signature_version="s3v4"),
        **CREDENTIALS,
    )


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the test S3 server."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name
