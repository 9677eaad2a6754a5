"""CORS and the offline API docs in headless Chromium, against the app on a real port.

The service (the real app with the tiny model, on uvicorn) and a page server listen on
two loopback ports. The page calls ``POST /analyze/`` with ``fetch`` and an API token
(the ``Authorization`` header makes Chromium send a preflight first): from
``http://127.0.0.1:<port>`` the embedded default allows it; from ``http://page.test``
(resolved to 127.0.0.1 by Chromium, so only CORS stands in the way) it fails and
the request is never made. ``/docs`` and ``/redoc`` must render the operations with
every request off loopback blocked.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from serve_app.engines.factory import build_engine
from tests.support.browser import LAUNCH_ARGS, PageProblems, screenshot
from tests.support.graphs import tiny_profile
from tests.support.http_servers import counting_server
from tests.support.media_files import real_photo
from tests.web.conftest import build_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api").expect

#: A name for a page on another origin; Chromium resolves it to loopback.
OTHER_HOST = "page.test"
LOOPBACK = {"127.0.0.1", "localhost", OTHER_HOST}

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>A page on another origin</title></head>
<body><p>Calls the service with fetch.</p>
<script>
window.callStory = async (service, token) => {
  const photo = await (await fetch("/photo.png")).blob();
  const form = new FormData();
  form.append("files", photo, "photo.png");
  form.append("language", "ja");
  try {
    const response = await fetch(service + "/analyze/", {
      method: "POST",
      headers: {"Authorization": "Bearer " + token, "Idempotency-Key": "page-" + Date.now()},
      body: form,
    });
    return {
      status: response.status,
      body: await response.json(),
      requestId: response.headers.get("X-Request-ID"),
    };
  } catch (error) {
    return {error: String(error)};
  }
};
window.callWithCookies = async (service) => {
  try {
    const response = await fetch(service + "/api/me", {credentials: "include"});
    return {status: response.status};
  } catch (error) {
    return {error: String(error)};
  }
};
</script></body></html>
"""


@dataclass(frozen=True)
class Service:
    url: str
    token: str
    balance: Any


@pytest.fixture(scope="module")
def browser_args() -> list[str]:
    return [*LAUNCH_ARGS, f"--host-resolver-rules=MAP {OTHER_HOST} 127.0.0.1"]


@pytest.fixture(scope="module")
def service(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The real app (story, no jobs; embedded default settings) on a loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    ready: dict[str, Any] = {}
    server_box: dict[str, uvicorn.Server] = {}

    async def run() -> None:
        profile = tiny_profile(tiny_model_dir, max_new_tokens=8)
        engine = build_engine(profile, tiny_model_dir.parent)
        await engine.start()
        site, close = build_site(
            (profile, engine), tmp_path_factory.mktemp("cross-origin"), jobs=False
        )
        try:
            ready["site"] = site
            server = uvicorn.Server(uvicorn.Config(site.app, log_level="warning", lifespan="off"))
            server_box["server"] = server
            await server.serve(sockets=[sock])
        finally:
            close()
            await engine.shutdown()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not (server_box.get("server") and server_box["server"].started):
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    site = ready["site"]
    token = site.accounts.tokens.create(site.user.id, "browser").token
    try:
        yield Service(
            f"http://127.0.0.1:{port}", token, lambda: site.accounts.credits.balance(site.user.id)
        )
    finally:
        server_box["server"].should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def page_port() -> Iterator[int]:
    """A second loopback server: the calling page and the photo it sends."""
    photo = real_photo().read_bytes()

    def handler(method: str, path: str, headers: dict, body: bytes) -> tuple:
        if path == "/photo.png":
            return 200, {"Content-Type": "image/png"}, photo
        return 200, {"Content-Type": "text/html; charset=utf-8"}, PAGE

    with counting_server(handler) as server:
        yield server.port


def test_allowed_page_calls_the_story_api(browser, service: Service, page_port: int) -> None:
    page = browser.new_page()
    problems = PageProblems()
    problems.watch(page)
    page.goto(f"http://127.0.0.1:{page_port}/")
    before = service.balance()
    result = page.evaluate("([url, token]) => callStory(url, token)", [service.url, service.token])
    assert result.get("status") == 200, result
    assert result["body"]["english"] and result["body"]["language"] == "ja"
    assert result["requestId"], "exposed headers are readable"
    assert service.balance() < before, "the story was charged"
    cookies = page.evaluate("(url) => callWithCookies(url)", service.url)
    assert "error" in cookies, "credentialed cross-origin requests are refused"
    problems.errors = [e for e in problems.errors if "Access-Control-Allow-Credentials" not in e]
    assert problems.errors == []
    page.close()


def test_other_origin_is_refused(browser, service: Service, page_port: int) -> None:
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"http://{OTHER_HOST}:{page_port}/")
    before = service.balance()
    result = page.evaluate("([url, token]) => callStory(url, token)", [service.url, service.token])
    assert result == {"error": "TypeError: Failed to fetch"}, result
    page.wait_for_timeout(200)  # the console message may trail the rejection
    assert any("blocked by CORS policy" in line for line in console), console
    assert service.balance() == before, "the preflight failed: the POST was never sent"
    page.close()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_render_offline(browser, service: Service, path: str) -> None:
    spec = httpx.get(service.url + "/openapi.json").json()
    operation_id = spec["paths"]["/analyze/"]["post"]["operationId"]
    page = browser.new_page()
    problems = PageProblems()
    problems.watch(page)
    outside: list[str] = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOOPBACK:
            outside.append(url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", only_loopback)
    page.goto(service.url + path)
    if path == "/docs":
        operation = page.locator(".opblock-summary-path[data-path='/analyze/']")
    else:
        operation = page.get_by_role("heading", name=f"operation/{operation_id} ")
    expect(operation.first).to_be_visible(timeout=30_000)
    screenshot(page, f"docs-offline{path.replace('/', '-')}")
    assert outside == [], f"requests off loopback: {outside}"
    # The service's CSP stops ReDoc's logo from its CDN before any request is made.
    refused = [e for e in problems.errors if "violates the following Content Security" in e]
    assert all("https://cdn.redoc.ly/" in e for e in refused), refused
    assert [e for e in problems.errors if e not in refused] == []
    page.close()
