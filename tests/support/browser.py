"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium via Playwright.

No browser is downloaded: Playwright drives the system Chromium (``.ci/run`` installs
the Debian package). Without it the browser tests are skipped, saying why.
Screenshots go to ``test-artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("SERVE_APP_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str | None:
    path = shutil.which(CHROMIUM) if not os.path.isabs(CHROMIUM) else CHROMIUM
    return path if path and os.access(path, os.X_OK) else None


@pytest.fixture(scope="module")
def browser_args() -> list[str]:
    """Chromium's command line; a module overrides this fixture to add switches."""
    return LAUNCH_ARGS


@pytest.fixture(scope="module")
def browser(browser_args: list[str]) -> Iterator[Any]:
    """One Chromium per test module (skipped, with the reason, when it is missing).

    Module-scoped on purpose: while Playwright's sync API is open its event loop counts
    as running in this thread, which would stop pytest-asyncio from running the async
    tests of later modules.
    """
    path = chromium_path()
    if path is None:
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's 'chromium' package "
            "(.ci/run does) or set SERVE_APP_CHROMIUM"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, args=browser_args)
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class PageProblems:
    """Console errors, uncaught exceptions and failed responses seen by a page."""

    errors: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"exception: {exc}"))
        page.on(
            "console",
            lambda msg: (
                msg.type == "error"
                and "Failed to load resource" not in msg.text
                and self.errors.append(f"console: {msg.text}")
            ),
        )
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.errors.append(f"HTTP {response.status} {response.request.method} {response.url}")


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
