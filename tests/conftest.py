"""Session-wide fixtures: the tiny model (built once) and one Ray cluster.

Tests marked ``vllm`` run real vLLM (``.venv-vllm``, scripts/test_vllm.sh); where vLLM
cannot be imported they skip and say why, unless ``SERVE_APP_REQUIRE_VLLM=1`` (CI).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

# One torch thread per process: 2-core CI machines, and Ray replicas share them.
os.environ.setdefault("OMP_NUM_THREADS", "1")

#: Fixtures shared by every test package (each module's docstring says what it offers).
pytest_plugins = [
    "tests.support.databases",
    "tests.support.models",
    "tests.support.browser",
    "tests.support.redis_servers",
    "tests.support.s3_server",
    "tests.support.speech_media",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from serve_app.engines.tiny_model import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2.5-vl")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.support.vllm_cpu import SKIP_REASON, vllm_importable, vllm_required

    marked = [item for item in items if item.get_closest_marker("vllm")]
    if not marked or vllm_importable():
        return
    if vllm_required():
        raise pytest.UsageError(f"{len(marked)} tests marked vllm cannot run: {SKIP_REASON}")
    for item in marked:
        item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


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

    from serve_app.net.proxy_trust import proxy_trust_environment

    os.environ.setdefault("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
    # As `serve-app serve` does: the HTTP proxy trusts no X-Forwarded-For.
    os.environ.update(proxy_trust_environment(()))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield port
    finally:
        serve.shutdown()
        ray.shutdown()
