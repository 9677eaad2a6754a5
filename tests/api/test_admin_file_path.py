"""Admin ``file_path`` on POST /api/analyze: only files under the allowed roots, safely."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import FastAPI

from serve_app.accounts.context import AccountsContext
from serve_app.config import Settings
from serve_app.media.limits import MediaLimits
from serve_app.storage.db import Database
from tests.support.databases import SESSION_KEY
from tests.support.media_files import make_image, make_png_header_bomb, make_video
from tests.support.uploads import (
    ACCOUNT_SETTINGS,
    build_upload_app,
    client_for,
    new_user,
    reservations,
)

KIB = 1024


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The allowed root, with media, a directory, a FIFO and symlinks in it."""
    base = tmp_path / "media"
    (base / "sub").mkdir(parents=True)
    make_image(base / "a.jpg", "jpeg", 96, 64)
    make_video(base / "sub" / "clip.mp4", frames=30, width=160, height=120)
    make_image(base / "a.png", "png", 32, 32).rename(base / "png-named.mp4")
    make_png_header_bomb(base / "bomb.png")
    (base / "empty.jpg").write_bytes(b"")
    (base / "big.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * (1100 * KIB))
    os.mkfifo(base / "pipe.jpg")
    outside = tmp_path / "secret.jpg"
    make_image(outside, "jpeg", 16, 16)
    (base / "escape.jpg").symlink_to(outside)
    (base / "inside.jpg").symlink_to(base / "a.jpg")
    (base / "dir-link").symlink_to(tmp_path)
    return base


@pytest.fixture
def accounts(sqlite_template: Path, tmp_path: Path):
    path = tmp_path / "db.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    database = Database(f"sqlite:///{path}")
    yield AccountsContext.build(database, ACCOUNT_SETTINGS, SESSION_KEY)
    database.dispose()


def make_settings(tmp_path: Path, roots: list[Path]) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        accounts=ACCOUNT_SETTINGS,
        media=MediaLimits(max_image_bytes=1024 * KIB, max_video_bytes=2048 * KIB),
        allowed_media_roots=roots,
    )


def app_for(tiny_engine, settings: Settings, accounts: AccountsContext) -> FastAPI:
    profile, engine = tiny_engine
    return build_upload_app(settings, accounts, {profile.name: (profile, engine)})


@pytest.fixture
def settings(tmp_path: Path, root: Path) -> Settings:
    return make_settings(tmp_path, [root])


@pytest.fixture
async def api(tiny_engine, settings: Settings, accounts: AccountsContext):
    async with client_for(app_for(tiny_engine, settings, accounts)) as c:
        yield c


@pytest.fixture
def admin(accounts) -> dict[str, str]:
    return new_user(accounts, "root", credits=0, admin=True)[0]


async def analyze_path(api, headers: dict[str, str], file_path: str | Path, **fields: str):
    return await api.post(
        "/api/analyze", data={"file_path": str(file_path), **fields}, headers=headers
    )


@pytest.mark.parametrize("name", ["a.jpg", "sub/clip.mp4", "inside.jpg"])
async def test_admin_analyses_a_file_under_the_root(api, admin, root, settings, name):
    response = await analyze_path(api, admin, root / name)
    assert response.status_code == 200, response.text
    assert response.json()["result"].strip()
    assert list(settings.spool_dir.glob("*")) == []


async def test_dotdot_inside_the_root_resolves_first(api, admin, root):
    response = await analyze_path(api, admin, f"{root}/sub/../a.jpg")
    assert response.status_code == 200, response.text


async def test_non_admin_is_403_and_not_charged(api, accounts, root):
    headers, user_id = new_user(accounts, "mallory", credits=100)
    response = await analyze_path(api, headers, root / "a.jpg")
    assert response.status_code == 403
    assert "administrators" in response.json()["detail"]
    assert reservations(accounts, user_id) == 0


@pytest.mark.parametrize(
    "path",
    [
        "{root}/../secret.jpg",
        "{root}/escape.jpg",
        "{root}/dir-link/secret.jpg",
        "/etc/passwd",
        "/proc/self/environ",
        "{root}/../nonexistent.jpg",
        "{root}",
    ],
)
async def test_paths_outside_the_root_are_403_without_leaking(api, admin, root, path):
    response = await analyze_path(api, admin, path.format(root=root))
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert "outside the allowed media roots" in detail
    assert str(root) not in detail and "secret" not in detail


@pytest.mark.parametrize(
    ("name", "status", "needle"),
    [
        ("sub", 400, "directory"),
        ("pipe.jpg", 400, "FIFO"),
        ("missing.jpg", 404, "does not exist"),
        ("empty.jpg", 422, "empty"),
        ("png-named.mp4", 400, "extension"),
        ("bomb.png", 413, "pixels"),
        ("big.jpg", 413, "limit"),
    ],
)
async def test_bad_files_under_the_root(api, admin, root, settings, name, status, needle):
    response = await analyze_path(api, admin, root / name)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert needle in detail
    assert str(root) not in detail
    assert list(settings.spool_dir.glob("*")) == []


@pytest.mark.parametrize(("path", "needle"), [("a.jpg", "absolute"), ("/x\0.jpg", "NUL")])
async def test_malformed_paths_are_400(api, admin, path, needle):
    response = await analyze_path(api, admin, path)
    assert response.status_code == 400
    assert needle in response.json()["detail"]


async def test_proc_is_refused_even_under_an_allowed_root(tiny_engine, accounts, admin, tmp_path):
    settings = make_settings(tmp_path, [Path("/")])
    async with client_for(app_for(tiny_engine, settings, accounts)) as api:
        for path in ("/proc/self/environ", "/dev/zero", "/sys/kernel/notes"):
            response = await analyze_path(api, admin, path)
            assert response.status_code == 403, (path, response.text)


async def test_feature_is_off_without_roots(tiny_engine, accounts, admin, tmp_path, root):
    settings = make_settings(tmp_path, [])
    async with client_for(app_for(tiny_engine, settings, accounts)) as api:
        response = await analyze_path(api, admin, root / "a.jpg")
    assert response.status_code == 403
    assert "disabled" in response.json()["detail"]


async def test_file_and_file_path_together_are_400(api, admin, root):
    response = await api.post(
        "/api/analyze",
        data={"file_path": str(root / "a.jpg")},
        files={"file": ("a.jpg", (root / "a.jpg").read_bytes())},
        headers=admin,
    )
    assert response.status_code == 400
