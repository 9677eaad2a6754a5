"""``serve-app serve`` as operators run it: SIGTERM drains, stops Ray, exits 0 (issue 14)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from serve_app.config import PROJECT_ROOT
from tests.conftest import free_port
from tests.support.media_files import make_image

pytestmark = [pytest.mark.ray, pytest.mark.slow]

START_TIMEOUT_S = 240.0


def serve_config(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """The embedded CPU profile with its data in ``tmp_path`` (the tiny model linked in)."""
    config = yaml.safe_load((PROJECT_ROOT / "configs/serve-cpu.yaml").read_text())
    data_dir = tmp_path / "data"
    (data_dir / "models").mkdir(parents=True)
    (data_dir / "models" / "tiny-qwen2.5-vl").symlink_to(tiny_model_dir)
    config["applications"][0]["args"]["settings"]["data_dir"] = str(data_dir)
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve-app serve exited before it was ready"
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"not ready within {START_TIMEOUT_S} s")


def test_sigterm_drains_in_flight_requests_and_exits_zero(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray_sig", dir="/tmp"))  # AF_UNIX paths are short
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    env.pop("RAY_ADDRESS", None)  # its own cluster, not the test session's
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serve_app",
                "serve",
                "--config",
                str(serve_config(tmp_path, tiny_model_dir)),
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # as under systemd or docker: signals go to it alone
        )
    try:
        wait_ready(base, process)
        image = make_image(tmp_path / "image.jpg", "jpeg", 96, 64)
        answers: list[httpx.Response] = []

        def story() -> None:  # credential-less local story (the embedded default)
            with image.open("rb") as handle:
                answers.append(httpx.post(f"{base}/analyze/", files={"files": handle}, timeout=120))

        in_flight = threading.Thread(target=story)
        in_flight.start()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        returncode = process.wait(timeout=90)
        stopped_after = time.monotonic() - started
        in_flight.join(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    output = log.read_text()
    assert returncode == 0, output[-3000:]
    assert stopped_after < 60
    assert "SIGTERM received" not in output and "Traceback" not in output, output[-3000:]
    assert "serve_app: SIGTERM: draining" in output
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    assert "english" in answers[0].json()
    leftover = subprocess.run(
        ["pgrep", "-f", str(ray_tmp)], capture_output=True, text=True
    ).stdout.split()
    assert leftover == []
