"""Fixtures of the jobs tests: databases (SQLite and PostgreSQL), users, jobs, videos."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User, create_user
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.frame_models.spec import ModelSpec
from serve_app.jobs.spec import models_to_json
from serve_app.jobs.store.records import NewJob
from tests.support.job_videos import make_astronaut_video

_names = itertools.count()
FACE = ModelSpec(model_id="face-detection", model_version="1")
PEOPLE = ModelSpec(model_id="people-detection")


def make_user(accounts: AccountsContext, credits: int = 0, admin: bool = False) -> User:
    return create_user(
        accounts.database,
        accounts.passwords,
        f"user{next(_names)}",
        "a-password",
        credits=credits,
        is_admin=admin,
    )


def new_job(user: User, *, input_key: str = "uploads/1-x.mp4", **overrides: object) -> NewJob:
    fields: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "user_id": user.id,
        "infer_fps": 5.0,
        "models_json": models_to_json([FACE]),
        "max_attempts": 2,
        "input_key": input_key,
    }
    fields.update(overrides)
    return NewJob(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def catalog() -> FrameModelCatalog:
    return FrameModelCatalog.from_yaml(
        Path(__file__).resolve().parents[2] / "configs/detectors.yaml"
    )


@pytest.fixture(scope="session")
def astronaut_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 30 fps, 480x360: 10 frames at infer_fps=5."""
    return make_astronaut_video(tmp_path_factory.mktemp("videos") / "astronaut.mp4")
