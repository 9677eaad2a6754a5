"""The web UI in headless Chromium against the running service (Ray Serve, tiny model).

The whole graph is deployed on the session's Ray cluster under a route prefix, and a
real browser signs in, analyses a video uploaded in several chunks (surviving network
errors), writes a story, creates and revokes an API token, runs a video job to 100 %
and looks at every page at desktop and phone widths. Screenshots land in
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from serve_app.app import AppArgs, ModelEntry, build_graph
from tests.support.browser import DESKTOP, PHONE, PageProblems, screenshot
from tests.support.graphs import FAST_ACCOUNTS, create_api_token, tiny_profile
from tests.support.job_videos import make_astronaut_video
from tests.support.media_files import real_photo

pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api").expect

APP, PREFIX = "web_ui", "/web"
CHUNK = 32 * 1024
SMALL = {"ray_actor_options": {"num_cpus": 0.1}}
PAGES = ["analyze", "story", "jobs", "tokens", "stats", "api"]


@dataclass(frozen=True)
class Service:
    url: str
    settings: dict[str, Any]


@pytest.fixture(scope="module")
def service(ray_serve: int, tiny_model_dir: Path, tmp_path_factory) -> Iterator[Service]:
    from ray import serve

    settings: dict[str, Any] = {
        "data_dir": str(tmp_path_factory.mktemp("web-graph")),
        "accounts": {**FAST_ACCOUNTS, "rate_limit_burst": 10_000},
        "uploads": {"chunk_bytes": CHUNK},
        "jobs": {"poll_interval_s": 0.2, "batch_frames": 4, "heartbeat_s": 1.0},
        "story": {"max_video_frames": 4},
    }
    profile = tiny_profile(tiny_model_dir, max_new_tokens=8)
    args = AppArgs(
        models=[ModelEntry(profile=profile)],
        story_model=ModelEntry(profile=profile),
        settings=settings,
    )
    names = ["Ingress", "FrameExtractor", "VisionLanguageModel", "StoryWriter", "Detector"]
    serve.run(
        build_graph(args, options={name: SMALL for name in names}),
        name=APP,
        route_prefix=PREFIX,
    )
    try:
        yield Service(f"http://127.0.0.1:{ray_serve}{PREFIX}", settings)
    finally:
        serve.delete(APP)


@pytest.fixture(scope="module")
def alice(service: Service) -> str:
    """A user with 200 credits (password ``password-alice``); returns an API token."""
    token, _ = create_api_token(service.settings, "alice", credits=200)
    return token


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = make_astronaut_video(tmp_path_factory.mktemp("web-video") / "astronaut.mp4", frames=60)
    assert path.stat().st_size > 4 * CHUNK  # several chunks
    return path


@pytest.fixture(scope="module")
def signed_in(browser, service: Service, alice: str) -> dict[str, Any]:
    """Alice's login session as browser storage (one login: sign-ins are rate limited)."""
    context = browser.new_context()
    try:
        response = context.request.post(
            f"{service.url}/login", data={"username": "alice", "password": "password-alice"}
        )
        assert response.status == 200, response.text()
        state: dict[str, Any] = context.storage_state()
        return state
    finally:
        context.close()


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser, problems: PageProblems, signed_in: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, storage_state=signed_in)
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems.watch(page)
    yield page
    context.close()
    assert problems.errors == []


def open_page(page: Any, service: Service, path: str = "/ui/analyze") -> None:
    """Go to ``path`` as the signed-in user (no detour through the sign-in page)."""
    page.goto(service.url + path)
    assert page.url == service.url + path


def balance(service: Service, token: str) -> int:
    me = httpx.get(f"{service.url}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    return int(me.json()["balance"])


def test_sign_in_and_out(
    browser,
    service: Service,
    alice: str,
) -> None:
    problems = PageProblems(expected_statuses={401})
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    problems.watch(page)
    page.goto(service.url + "/ui/tokens")
    page.wait_for_url(re.compile(r".*/web/ui/login\?next=/web/ui/tokens$"))
    screenshot(page, "login-desktop")
    page.fill("#username", "alice")
    page.fill("#password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    page.fill("#password", "password-alice")
    page.press("#password", "Enter")  # the keyboard works too
    # Exact URLs: a glob like **/ui/tokens would also match .../ui/login?next=/web/ui/tokens.
    page.wait_for_url(re.compile(rf"^http://[^/]+{PREFIX}/ui/tokens$"))  # after "load"
    expect(page.locator("#credits")).to_have_text("200 credits")
    page.click("#sign-out")
    page.wait_for_url(re.compile(rf"^http://[^/]+{PREFIX}/ui/login$"))
    page.goto(service.url + "/ui/analyze")
    page.wait_for_url(re.compile(r".*/ui/login\?next="))
    context.close()
    assert problems.errors == []


def test_analyze_a_video_in_chunks_through_network_errors(
    page: Any, service: Service, alice: str, video: Path
) -> None:
    before = balance(service, alice)
    chunks: list[int] = []
    dropped: list[int] = []
    network_down = {"on": False}

    def flaky_network(route: Any) -> None:
        body = route.request.post_data_buffer or b""
        match = re.search(rb'name="chunk_number"\r\n\r\n(\d+)\r\n', body)
        number = int(match.group(1)) if match else -1
        if (number == 1 and 1 not in dropped) or (number == 3 and network_down["on"]):
            dropped.append(number)
            route.abort("connectionreset")
            return
        chunks.append(number)
        route.continue_()

    open_page(page, service)
    page.route("**/api/analyze", flaky_network)
    network_down["on"] = True  # chunk 3 cannot get through until the network is back
    page.set_input_files("#file", str(video))
    page.fill("#prompt", "What happens in this clip?")
    page.fill("#interval", "15")
    page.click("#analyze-submit")
    # Chunk 1 failed once and was retried; chunk 3 failed five times: the upload pauses.
    page.wait_for_selector("#upload-resume:visible", timeout=60_000)
    assert "Upload paused" in page.locator("#analyze-error").inner_text()
    assert page.locator("#upload-label").inner_text() == "Upload paused"
    assert page.locator("#upload-bar").get_attribute("value") not in ("0", "100")
    assert chunks == [0, 1, 2] and dropped == [1, 3, 3, 3, 3, 3]
    screenshot(page, "analyze-paused-desktop")

    network_down["on"] = False
    page.click("#upload-resume")
    page.wait_for_selector("#result:visible", timeout=120_000)
    total = -(-video.stat().st_size // CHUNK)
    # Resumed from the server's list: only the missing chunks were sent again.
    assert chunks == list(range(total))
    assert page.locator("#result-text").inner_text().strip() != ""
    assert page.locator("#result-charged").inner_text() == "10"
    assert page.locator("#result-credits").inner_text() == str(before - 10)
    assert page.locator("#credits").inner_text() == f"{before - 10} credits"
    assert page.locator("#analyze-error").is_hidden()
    assert balance(service, alice) == before - 10  # charged once
    screenshot(page, "analyze-result-desktop")


def test_write_a_story(page: Any, service: Service, alice: str) -> None:
    before = balance(service, alice)
    open_page(page, service, "/ui/story")
    page.set_input_files("#story-files", str(real_photo("astronaut")))
    page.select_option("#story-language", "ja")
    page.click("#story-submit")
    page.wait_for_selector("#story-result:visible", timeout=120_000)
    assert page.locator("#story-tr-title").inner_text() == "Japanese"
    assert page.locator("#story-translation").get_attribute("lang") == "ja"
    assert int(page.locator("#story-output-tokens").inner_text()) > 0
    assert balance(service, alice) == before - 10
    screenshot(page, "story-result-desktop")


def test_create_copy_and_revoke_a_token(page: Any, service: Service, alice: str) -> None:
    open_page(page, service, "/ui/tokens")
    page.click("#token-submit")
    expect(page.locator("#token-error")).to_have_text("Give the token a name.")
    page.fill("#token-name", "laptop")
    page.click("#token-submit")
    page.wait_for_selector("#token-created:visible")
    page.wait_for_selector("#tokens-body tr")
    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("sa_")
    row = page.locator("#tokens-body tr", has_text="laptop")
    expect(row).to_have_count(1)
    assert secret not in row.inner_text()  # never listed again
    page.click("#token-copy")
    page.wait_for_function("() => document.getElementById('token-copy-status').textContent")
    screenshot(page, "tokens-created-desktop")

    works = httpx.get(f"{service.url}/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert works.status_code == 200 and works.json()["username"] == "alice"

    page.click("button[aria-label='Revoke laptop']")
    page.click("text=Yes, revoke")
    page.wait_for_function(
        "() => !document.querySelector('#tokens-body').textContent.includes('laptop')"
    )
    revoked = httpx.get(f"{service.url}/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert revoked.status_code == 401


def test_a_video_job_runs_to_100_percent(
    page: Any, service: Service, alice: str, video: Path
) -> None:
    open_page(page, service, "/ui/jobs")
    page.set_input_files("#job-file", str(video))
    page.check("input[value='face-detection']")
    page.fill("#job-fps", "5")
    page.click("#job-submit")
    page.wait_for_selector("#job-view:visible")
    page.wait_for_function(
        "() => document.getElementById('job-status').textContent === 'succeeded'",
        timeout=120_000,
    )
    assert page.locator("#job-progress").get_attribute("value") == "100"
    assert page.locator("#job-progress-text").inner_text().startswith("100%")
    page.wait_for_function(
        "() => /face-detection: \\d+ box/.test("
        "document.getElementById('frame-caption').textContent)"
    )
    # The face box is drawn on the frame: the canvas holds the box's yellow.
    yellow = page.evaluate(
        """() => {
          const c = document.getElementById('frame-canvas');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4)
            if (d[i] > 240 && d[i + 1] > 195 && d[i + 1] < 230 && d[i + 2] < 90) n++;
          return n;
        }"""
    )
    assert yellow > 200
    results = page.request.get(page.locator("#job-download").get_attribute("href")).json()
    assert len(results["frame_offsets"]) == 10 and len(results["face-detection"]) == 10
    assert page.locator("#recent-body tr").first.inner_text().count("succeeded") == 1
    screenshot(page, "jobs-result-desktop")


def test_stats_update_live(page: Any, service: Service, alice: str) -> None:
    open_page(page, service, "/ui/stats")
    page.wait_for_function("() => /^\\d+%$/.test(document.getElementById('stat-cpu').textContent)")
    page.wait_for_selector("#deps-body tr")
    assert page.locator("#deps-body", has_text="VisionLanguageModel").count() == 1
    assert page.locator("#stat-gpus").inner_text() == "0"
    page.wait_for_timeout(3500)  # a second sample draws a line on the chart
    cpu_line = page.evaluate(
        """() => {
          const c = document.getElementById('stats-chart');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;  // pixels in the CPU line's blue (#1f4fd1)
          for (let i = 0; i < d.length; i += 4)
            if (Math.abs(d[i] - 31) < 30 && Math.abs(d[i + 1] - 79) < 30 && d[i + 2] > 180) n++;
          return n;
        }"""
    )
    assert cpu_line > 20
    screenshot(page, "stats-live-desktop")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_every_page_fits_and_works_at_each_width(
    browser,
    service: Service,
    signed_in: dict[str, Any],
    viewport: str,
) -> None:
    problems = PageProblems()
    size = DESKTOP if viewport == "desktop" else PHONE
    context = browser.new_context(viewport=size, storage_state=signed_in)
    try:
        page = context.new_page()
        problems.watch(page)
        for name in PAGES:
            page.goto(f"{service.url}/ui/{name}")
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways at {viewport} width"
            assert page.locator("h1").count() == 1
            assert page.locator("nav[aria-label=Main] [aria-current=page]").count() == 1
            screenshot(page, f"{name}-{viewport}")
        # Keyboard: the skip link is the first stop and leads to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
    finally:
        context.close()
    assert problems.errors == []


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_main_page_signed_out_and_in(
    browser, service: Service, signed_in: dict[str, Any], viewport: str
) -> None:
    """``GET /`` is the main page: sign in from it, then it links to the app."""
    problems = PageProblems()
    size = DESKTOP if viewport == "desktop" else PHONE
    context = browser.new_context(viewport=size)
    try:
        page = context.new_page()
        problems.watch(page)
        page.goto(f"{service.url}/")
        assert page.url == f"{service.url}/"  # no redirect
        expect(page.locator("h1")).to_have_count(1)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the main page scrolls sideways at {viewport} width"
        for name in ("docs", "redoc", "ui/api"):
            expect(page.locator(f"main a[href='{PREFIX}/{name}']")).to_be_visible()
        screenshot(page, f"home-signed-out-{viewport}")
        page.click("#sign-in")
        page.wait_for_url(re.compile(rf"^http://[^/]+{PREFIX}/ui/login"))
    finally:
        context.close()
    context = browser.new_context(viewport=size, storage_state=signed_in)
    try:
        page = context.new_page()
        problems.watch(page)
        page.goto(f"{service.url}/")
        expect(page.locator("#credits")).to_be_visible()
        page.click("#open-app")
        page.wait_for_url(re.compile(rf"^http://[^/]+{PREFIX}/ui/analyze$"))
    finally:
        context.close()
    assert problems.errors == []


def test_offline_docs_under_the_route_prefix(browser, service: Service) -> None:
    """/docs and /redoc through Serve's proxy, every request off loopback blocked."""
    problems = PageProblems()
    page = browser.new_page()
    problems.watch(page)
    offsite: list[str] = []

    def loopback_only(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith("http") and host not in ("127.0.0.1", "localhost"):
            offsite.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", loopback_only)
    page.goto(f"{service.url}/docs")
    expect(page.locator(".opblock-summary-path[data-path='/videoinfer/']").first).to_be_visible()
    page.goto(f"{service.url}/redoc")
    expect(page.get_by_role("heading", name="operation/write_story").first).to_be_visible()
    page.close()
    assert offsite == []
    # ReDoc's sidebar logo (its CDN) is refused by the page's CSP, before any request.
    assert all("cdn.redoc.ly" in e for e in problems.errors if "Content Security" in e)
    assert [e for e in problems.errors if "Content Security" not in e] == []


def test_cors_through_the_serve_proxy(service: Service, alice: str) -> None:
    origin = "http://127.0.0.1:5173"
    preflight = httpx.options(
        f"{service.url}/analyze/",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in preflight.headers
    me = httpx.get(
        f"{service.url}/api/me", headers={"Origin": origin, "Authorization": f"Bearer {alice}"}
    )
    assert me.headers["access-control-allow-origin"] == origin
    other = httpx.get(f"{service.url}/healthz", headers={"Origin": "http://evil.example"})
    assert not any(name.startswith("access-control-") for name in other.headers)
