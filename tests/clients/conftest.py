"""The real Serve graph at the host root, for clients that call absolute paths.

The roboflow SDK joins ``/videoinfer/`` etc. to its ``API_URL`` as absolute paths and
the ImgStory examples post to ``/analyze/``, so the app is deployed with route prefix
``/`` on the session's Ray cluster (``ray_serve``, listening on 127.0.0.1 only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from serve_app.app import AppArgs, ModelEntry, build_app
from tests.support.graphs import FAST_ACCOUNTS, create_api_token, tiny_profile

APP = "clients"


@dataclass(frozen=True)
class Service:
    url: str
    token: str
    username: str


@pytest.fixture(scope="package")
def service(ray_serve: int, tiny_model_dir: Path, tmp_path_factory) -> Iterator[Service]:
    from ray import serve

    settings = {
        "data_dir": str(tmp_path_factory.mktemp("clients")),
        "accounts": FAST_ACCOUNTS,
        "jobs": {"poll_interval_s": 0.2, "batch_frames": 4, "heartbeat_s": 1.0},
    }
    token, _ = create_api_token(settings, "sdk-user", credits=1000)
    profile = tiny_profile(tiny_model_dir, max_new_tokens=8)
    args = AppArgs(
        models=[ModelEntry(profile=profile)],
        story_model=ModelEntry(profile=profile),
        settings=settings,
    )
    serve.run(build_app(args), name=APP, route_prefix="/")
    try:
        yield Service(f"http://127.0.0.1:{ray_serve}", token, "sdk-user")
    finally:
        serve.delete(APP)
