"""Session-wide fixtures: the tiny model (built once) and one Ray cluster."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

# One torch thread per process: 2-core CI machines, and Ray replicas share them.
os.environ.setdefault("OMP_NUM_THREADS", "1")

#: Fixtures shared by every test package (each module's docstring says what it offers).
pytest_plugins = ["tests.support.databases", "tests.support.models", "tests.support.browser"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from serve_app.engines.tiny_model import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2.5-vl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ray_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A local Ray cluster with Serve's HTTP proxy on a free loopback port.

    Started once per test session (cold start is ~10 s on 2 cores) and shut down at
    the end. Yields the HTTP port.
    """
    import ray
    from ray import serve

    os.environ.setdefault("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield port
    finally:
        serve.shutdown()
        ray.shutdown()
