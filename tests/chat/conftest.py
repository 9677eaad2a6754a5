"""The real FastAPI app over an in-process pipeline with the tiny model, and media."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from serve_app.accounts.context import AccountsContext, open_accounts
from serve_app.accounts.settings import AccountSettings
from serve_app.config import Settings
from serve_app.http.app import create_app
from serve_app.pipeline.describe import DescribePipeline
from serve_app.story.pipeline import StoryPipeline
from tests.support.media_files import make_image, make_video
from tests.support.uploads import new_user

STORY_MODEL = "tiny-story"


def data_url(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


@dataclass
class ChatApp:
    app: object
    accounts: AccountsContext
    admin: str
    user: str
    user_id: int


@pytest.fixture
def chat_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        accounts=AccountSettings(argon2_time_cost=1, argon2_memory_kib=8, rate_limit_burst=10_000),
        inline_media_bytes=4_000,
    )


@pytest.fixture
def chat_app(tiny_engine, chat_settings: Settings) -> Iterator[ChatApp]:
    profile, engine = tiny_engine
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine)}, profile.name, chat_settings.media
    )
    # The story model: text-only, here the same tiny engine under its own name.
    story_profile = profile.model_copy(update={"name": STORY_MODEL, "multimodal": False})
    story = StoryPipeline.in_process(pipeline, story_profile, engine)
    accounts = open_accounts(chat_settings)
    admin, _ = new_user(accounts, "admin", admin=True)
    user, user_id = new_user(accounts, "payer", credits=25)
    app = create_app(pipeline, chat_settings, accounts, story=story)
    token = {h: v.removeprefix("Bearer ") for h, v in admin.items()}["Authorization"]
    yield ChatApp(app, accounts, token, user["Authorization"].removeprefix("Bearer "), user_id)
    accounts.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("chat-media")
    return {
        "jpeg": data_url(make_image(root / "a.jpg", "jpeg", 96, 64), "image/jpeg"),
        "png": data_url(make_image(root / "b.png", "png", 64, 64), "image/png"),
        "video": data_url(
            make_video(root / "c.mp4", frames=60, width=160, height=120), "video/mp4"
        ),
    }


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory) -> bytes:
    root = tmp_path_factory.mktemp("chat-video")
    return make_video(root / "d.mp4", frames=60, width=160, height=120).read_bytes()
