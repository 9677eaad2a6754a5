"""``/readyz`` answers within a second, also while a model is still loading."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from serve_app.accounts.context import open_accounts
from serve_app.config import Settings
from serve_app.http.app import create_app
from tests.api.test_analyze_credits import ACCOUNT_SETTINGS


class LoadingPipeline:
    """A pipeline whose model is still loading: its readiness check never returns."""

    model_names = ("loading-model",)

    async def readiness(self) -> dict[str, bool]:
        await asyncio.sleep(3600)
        return {}


async def test_readyz_is_prompt_503_while_loading(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", accounts=ACCOUNT_SETTINGS)
    accounts = open_accounts(settings)
    app = create_app(LoadingPipeline(), settings, accounts)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        started = time.monotonic()
        ready = await client.get("/readyz", timeout=10)
        elapsed = time.monotonic() - started
    accounts.close()
    assert elapsed < 1.0
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
    assert ready.json() == {"status": "not ready", "components": {"models": False}}
