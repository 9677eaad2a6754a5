"""analyze_charged: every check before a reservation; one charge; refunds on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.users import User
from serve_app.analysis.charged import analyze_charged
from serve_app.analysis.params import AnalyzeParams, check_params
from serve_app.config import Settings
from serve_app.errors import MediaTooLarge, UnknownModel, UnsupportedMedia
from serve_app.pipeline.describe import DescribePipeline
from serve_app.storage.db import Database
from serve_app.storage.spool import SpooledFile
from tests.support.databases import SESSION_KEY
from tests.support.media_files import make_image, make_png_header_bomb
from tests.support.uploads import ACCOUNT_SETTINGS, new_user, reservations


@pytest.fixture
def accounts(sqlite_template: Path, tmp_path: Path):
    path = tmp_path / "db.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    database = Database(f"sqlite:///{path}")
    yield AccountsContext.build(database, ACCOUNT_SETTINGS, SESSION_KEY)
    database.dispose()


@pytest.fixture
def run(tiny_engine, accounts, tmp_path):
    profile, engine = tiny_engine
    settings = Settings(data_dir=tmp_path / "data")
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine)}, profile.name, settings.media
    )
    _, user_id = new_user(accounts, "payer", credits=20)

    async def analyze(path: Path, name: str, key: str | None = None, **params):
        user = User(user_id, "payer", False, accounts.credits.balance(user_id), None)  # type: ignore[arg-type]
        upload = SpooledFile(path=path, size=path.stat().st_size, filename=name)
        raw = AnalyzeParams(**params)
        checked = check_params(pipeline, raw, settings.analysis)
        return await analyze_charged(
            pipeline, accounts, settings.analysis, user, upload, raw, checked, idempotency_key=key
        )

    analyze.user_id = user_id  # type: ignore[attr-defined]
    return analyze


async def test_charges_once_and_replays_with_a_key(run, accounts, tmp_path):
    image = make_image(tmp_path / "a.jpg", "jpeg", 64, 48)
    first = await run(image, "a.jpg", key="k")
    assert first.body["tokens_used"] == 10 and first.body["remaining_tokens"] == 10
    again = await run(image, "a.jpg", key="k")
    assert again.replayed and again.body == first.body
    assert accounts.credits.balance(run.user_id) == 10


@pytest.mark.parametrize(
    ("make", "name", "params", "error"),
    [
        (lambda p: make_png_header_bomb(p), "b.png", {}, MediaTooLarge),
        (lambda p: make_image(p, "png"), "a.mp4", {}, UnsupportedMedia),
        (lambda p: make_image(p, "jpeg"), "a.jpg", {"model": "nope"}, UnknownModel),
    ],
)
async def test_rejections_happen_before_any_reservation(
    run, accounts, tmp_path, make, name, params, error
):
    path = make(tmp_path / "file")
    with pytest.raises(error):
        await run(path, name, **params)
    assert reservations(accounts, run.user_id) == 0
    assert accounts.credits.balance(run.user_id) == 20
