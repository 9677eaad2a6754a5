"""What every case shares: a scratch directory, the tiny model, media, a Ray cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve_app.config import resolve_config_path
from serve_app.engines.profile import TINY_MODEL, ModelProfile

TINY_PROFILE = "configs/models/tiny-qwen2.5-vl.yaml"
#: Cheap password hashing (the benchmark's user logs in with a token only) and a
#: per-token rate limit far above what the benchmark sends.
ACCOUNT_SETTINGS = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8,
    "argon2_parallelism": 1,
    "rate_limit_per_s": 100_000,
    "rate_limit_burst": 100_000,
}


@dataclass(frozen=True)
class BenchEnv:
    root: Path
    profile: ModelProfile
    image: Path
    video: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def model_actor_options(self) -> dict[str, object]:
        """VisionLanguageModel's ``ray_actor_options``: a whole GPU for GPU profiles."""
        if self.profile.device == "cpu" or self.profile.backend == "openai":
            return {"num_cpus": 0.25}
        return {"num_cpus": 1, "num_gpus": 1}


#: One benchmark user sends every request: lift the per-user cap on requests in flight
#: (429 beyond it) far above the benchmark's concurrency, like the rate limit above.
ADMISSION_SETTINGS = {"max_requests_in_flight_per_user": 10_000}


def app_settings(env: BenchEnv) -> dict[str, Any]:
    """Settings overrides of the benchmark's app: data dir, cheap accounts, lifted caps."""
    return {
        "data_dir": str(env.data_dir),
        "accounts": ACCOUNT_SETTINGS,
        "admission": ADMISSION_SETTINGS,
    }


def admin_token(env: BenchEnv) -> str:
    """An API token of an admin (never charged credits), made straight in the database."""
    from serve_app.accounts.context import open_accounts
    from serve_app.accounts.users import create_user, find_user
    from serve_app.config import Settings
    from serve_app.errors import NotFound

    accounts = open_accounts(Settings(**app_settings(env)))
    try:
        try:
            user = find_user(accounts.database, "bench-admin")
        except NotFound:
            user = create_user(
                accounts.database, accounts.passwords, "bench-admin", "bench-password-1",
                is_admin=True,
            )  # fmt: skip
        return accounts.tokens.create(user.id, "bench").token
    finally:
        accounts.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiny_profile(data_dir: Path) -> ModelProfile:
    """The shipped tiny CPU profile, its model built offline under ``data_dir/models``."""
    from serve_app.engines.tiny_model import ensure_tiny_model

    model_dir = ensure_tiny_model(data_dir / "models" / "tiny-qwen2.5-vl")
    shipped = ModelProfile.from_yaml(resolve_config_path(TINY_PROFILE))
    return shipped.model_copy(update={"model": str(model_dir)})


@contextlib.contextmanager
def bench_env(keep: bool = False, profile_path: str | None = None) -> Iterator[BenchEnv]:
    """Scratch dir with a JPEG, an MP4 and the model: ``profile_path`` or the tiny one.

    The tiny model is built offline with the CPU profile's settings; another profile
    (e.g. a GPU one) is used as it is.
    """
    from tests.support.media_files import make_image, make_video

    root = Path(tempfile.mkdtemp(prefix="serve-app-bench-"))
    try:
        (root / "data").mkdir()
        profile = tiny_profile(root / "data")
        if profile_path:
            chosen = ModelProfile.from_yaml(resolve_config_path(profile_path))
            if chosen.model == TINY_MODEL:  # e.g. the tiny model's vLLM CPU profile
                chosen = chosen.model_copy(update={"model": profile.model})
            profile = chosen
        image = make_image(root / "photo.jpg", "jpeg", 320, 240)
        # 10 s of 640x360 H.264: a CPU-bound decode of ~0.2-0.5 s on one core.
        video = make_video(root / "clip.mp4", width=640, height=360, frames=300, pattern="photo")
        yield BenchEnv(root=root, profile=profile, image=image, video=video)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Cluster:
    port: int
    ray_tmp: str


@contextlib.contextmanager
def ray_cluster(num_cpus: int) -> Iterator[Cluster]:
    """A local Ray cluster (own RAY_TMPDIR) with Serve's proxy on a loopback port.

    Serve and Ray are shut down on exit, whatever happens.
    """
    import ray
    from ray import serve

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    os.environ["RAY_TMPDIR"] = str(tmp)
    port = free_port()
    try:
        # GPUs are detected by Ray itself.
        ray.init(
            num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=str(tmp)
        )
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield Cluster(port=port, ray_tmp=str(tmp))
    finally:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
