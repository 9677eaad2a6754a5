"""The Long videos page in headless Chromium, against the real app on a loopback port.

The app (tiny model, video jobs) and a job worker running summary jobs on the same
tiny model share one event loop in a thread. The browser uploads a generated video
through the page, preflights, starts, sees the chunk captions arrive while the job
still runs (the last chunk's caption request waits on a gate the test opens), follows
the chapters timeline and captions to seek the video, downloads the exports, and
cancels a second summary.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from serve_app.engines.backend import EngineBackend
from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.engines.factory import build_engine
from serve_app.jobs.worker.loop import JobWorker
from serve_app.speech.backend import EngineSpeech
from serve_app.speech.pocketsphinx_engine import PocketsphinxEngine
from serve_app.summaries.executor import SummaryExecutor
from serve_app.summaries.settings import SummarySettings
from tests.support.browser import DESKTOP, PHONE, PageProblems, screenshot
from tests.support.graphs import tiny_profile
from tests.support.media_files import encoder_for, make_video
from tests.support.speech_media import SpeechVideo
from tests.web.conftest import PASSWORD, build_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api").expect

SUMMARIES = {"caption_max_tokens": 12, "summary_max_tokens": 48, "min_chunk_s": 1.0}
GATED_CHUNK = "chunk-2"  # the third chunk's caption request


class GatedModel:
    """The real tiny engine; the caption of chunk 2 waits until the test opens ``gate``.

    Not a stand-in: every request runs on the engine. The gate only holds one request
    back, so the page is seen with some chunks done and the job still running.
    """

    def __init__(self, engine: Engine, gate: asyncio.Event) -> None:
        self.backend = EngineBackend(engine)
        self.gate = gate

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        if request.request_id == GATED_CHUNK:
            await self.gate.wait()
        return await self.backend.generate(request)

    async def ready(self) -> bool:
        return await self.backend.ready()


@dataclass
class Service:
    url: str
    loop: asyncio.AbstractEventLoop
    gate: asyncio.Event

    def open_gate(self, is_open: bool) -> None:
        action = self.gate.set if is_open else self.gate.clear
        self.loop.call_soon_threadsafe(action)


@pytest.fixture(scope="module")
def service(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    box: dict[str, Any] = {}

    async def run() -> None:
        profile = tiny_profile(tiny_model_dir, max_new_tokens=12)
        engine = build_engine(profile, tiny_model_dir.parent)
        await engine.start()
        site, close = build_site(
            (profile, engine),
            tmp_path_factory.mktemp("summaries-site"),
            story=False,
            more_settings={
                "jobs": {"poll_interval_s": 0.1, "heartbeat_s": 0.5},
                "summaries": SUMMARIES,
                "speech": {"backend": "pocketsphinx"},
            },
        )
        assert site.jobs is not None
        gate = asyncio.Event()
        model = GatedModel(engine, gate)
        speech_engine = PocketsphinxEngine()
        await speech_engine.start()
        executor = SummaryExecutor(
            site.jobs,
            SummarySettings(**SUMMARIES),
            {profile.name: model},
            model,
            4096,
            EngineSpeech(speech_engine),
        )
        worker = JobWorker(site.jobs, executor)
        worker_loop = asyncio.ensure_future(worker.run_forever())
        server = uvicorn.Server(uvicorn.Config(site.app, log_level="warning", lifespan="off"))
        box.update(server=server, gate=gate, loop=asyncio.get_running_loop())
        try:
            await server.serve(sockets=[sock])
        finally:
            gate.set()
            await worker.stop()
            await worker_loop
            close()
            await engine.shutdown()
            await speech_engine.shutdown()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not (box.get("server") and box["server"].started):
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield Service(f"http://127.0.0.1:{port}", box["loop"], box["gate"])
    finally:
        box["server"].should_exit = True
        thread.join(timeout=60)
        sock.close()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 10 fps, in a format Debian's Chromium plays (VP9 in WebM, else H.264)."""
    folder = tmp_path_factory.mktemp("summaries-video")
    if encoder_for("vp9"):
        return make_video(folder / "clip.webm", codec="vp9", container="webm", fps=10, frames=60)
    return make_video(folder / "clip.mp4", fps=10, frames=60)


@pytest.fixture(scope="module")
def signed_in(browser, service: Service) -> dict[str, Any]:
    context = browser.new_context()
    try:
        response = context.request.post(
            f"{service.url}/login", data={"username": "alice", "password": PASSWORD}
        )
        assert response.status == 200, response.text()
        state: dict[str, Any] = context.storage_state()
        return state
    finally:
        context.close()


@pytest.fixture
def page(browser, signed_in: dict[str, Any]) -> Iterator[Any]:
    problems = PageProblems()
    context = browser.new_context(viewport=DESKTOP, storage_state=signed_in)
    page = context.new_page()
    page.set_default_timeout(60_000)
    problems.watch(page)
    yield page
    context.close()
    assert problems.errors == []


def video_time(page: Any) -> float:
    return float(page.evaluate("document.getElementById('sum-video').currentTime"))


def fill_form(page: Any, video: Path) -> None:
    page.set_input_files("#sum-file", str(video))
    page.fill("#sum-chunk", "2")
    page.fill("#sum-frames", "2")


def test_a_summary_from_upload_to_downloads(page: Any, service: Service, video: Path) -> None:
    service.open_gate(False)
    page.goto(f"{service.url}/ui/summaries")
    expect(page.locator("nav[aria-label=Main] [aria-current=page]")).to_have_text("Long videos")
    fill_form(page, video)
    page.select_option("#sum-language", "ja")
    page.click("#sum-preflight")
    expect(page.locator("#sum-estimate")).to_be_visible()
    assert page.locator("#est-chunks").inner_text() == "3"
    assert page.locator("#est-frames").inner_text() == "6"
    assert page.locator("#est-duration").inner_text() == "0:06"
    assert page.locator("#est-credits").inner_text() == "11"  # 3 chunks at 2, and 5 for the summary

    page.click("#sum-start")
    # Two chunks are captioned while the third waits: they arrive before the job ends.
    expect(page.locator("#sum-captions li")).to_have_count(2)
    expect(page.locator("#sum-status")).to_have_text("running")
    expect(page.locator("#sum-progress-text")).to_contain_text("2 of 3 chunks")
    assert page.locator("#sum-progress").get_attribute("value") == "67"
    assert page.locator("#sum-cancel").is_visible()
    screenshot(page, "summaries-running-desktop")
    service.open_gate(True)
    expect(page.locator("#sum-status")).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#sum-captions li")).to_have_count(3)
    assert page.locator("#sum-progress-text").inner_text().startswith("100% · 3 of 3 chunks")
    assert page.locator("#sum-summary").inner_text().strip() != ""
    assert page.locator("#sum-cancel").is_hidden()

    # The video plays the chosen file; captions and chapters seek it.
    page.wait_for_function("document.getElementById('sum-video').readyState >= 1")
    starts = [
        float(s)
        for s in page.locator("#sum-captions li").evaluate_all(
            "items => items.map(li => li.dataset.start)"
        )
    ]
    assert starts == [0.0, 2.0, 4.0]
    page.locator("#sum-captions li button").nth(2).click()
    page.wait_for_function("Math.abs(document.getElementById('sum-video').currentTime - 4) < 0.05")
    expect(page.locator("#sum-captions li.current")).to_have_attribute("data-index", "2")

    segments = page.locator("#sum-timeline .segment")
    count = segments.count()
    assert count >= 1 and count == page.locator("#sum-chapters li").count()
    document = page.locator("#sum-download-list a[data-export='export.json']")
    chapters = page.request.get(service.url + document.get_attribute("href")).json()["chapters"]
    assert len(chapters) == count
    # Each segment is as wide as its chapter is long (within the segments' padding).
    widths = [segments.nth(i).bounding_box()["width"] for i in range(count)]
    lengths = [c["end_s"] - c["start_s"] for c in chapters]
    for width, length in zip(widths, lengths, strict=True):
        assert abs(width / sum(widths) - length / sum(lengths)) < 0.05
    last = count - 1
    segments.nth(last).click()
    target = chapters[last]["start_s"]
    page.wait_for_function(
        f"Math.abs(document.getElementById('sum-video').currentTime - {target}) < 0.05"
    )
    assert abs(video_time(page) - target) < 0.05
    expect(page.locator("#sum-timeline .segment.current")).to_have_attribute(
        "data-index", str(last)
    )
    expect(page.locator("#sum-chapters li.current")).to_have_attribute("data-index", str(last))

    # Downloads: every export answers with its type; the bilingual ones too.
    links = page.locator("#sum-download-list a")
    exports = {a.get_attribute("data-export"): a.get_attribute("href") for a in links.all()}
    assert set(exports) == {
        "export.srt",
        "export.vtt",
        "export.vtt?track=chapters",
        "export.json",
        "export.srt?variant=bilingual",
        "export.vtt?variant=bilingual",
    }
    for name, href in exports.items():
        response = page.request.get(service.url + href)
        assert response.status == 200, (name, response.text())
        kind = {"srt": "application/x-subrip", "vtt": "text/vtt", "json": "application/json"}
        assert response.headers["content-type"].startswith(kind[name.split("?")[0][7:]])
        assert response.headers["content-disposition"].startswith("attachment")
    assert page.request.get(service.url + exports["export.vtt"]).text().startswith("WEBVTT")
    job_id = page.locator("#sum-id").inner_text().removeprefix("Summary ")
    expect(page.locator(f"#sum-recent-body tr[data-job-id='{job_id}']")).to_contain_text(
        "succeeded"
    )
    screenshot(page, "summaries-done-desktop")


def test_cancel_then_reopen_an_earlier_summary(page: Any, service: Service, video: Path) -> None:
    service.open_gate(False)
    page.goto(f"{service.url}/ui/summaries")
    fill_form(page, video)
    page.click("#sum-start")
    expect(page.locator("#sum-captions li")).to_have_count(2)
    page.click("#sum-cancel")
    expect(page.locator("#sum-status")).to_have_text("cancelled")
    expect(page.locator("#sum-failure")).to_be_visible()
    assert page.locator("#sum-downloads").is_hidden()
    service.open_gate(True)

    # Reopen the finished one from the list: its captions, chapters and downloads.
    page.reload()
    rows = page.locator("#sum-recent-body tr")
    expect(rows).to_have_count(2)
    finished = rows.filter(has_text="succeeded")
    finished.get_by_role("button", name=re.compile("Open summary")).click()
    expect(page.locator("#sum-status")).to_have_text("succeeded")
    expect(page.locator("#sum-captions li")).to_have_count(3)
    assert page.locator("#sum-timeline .segment").count() >= 1
    assert page.locator("#sum-downloads").is_visible()
    # No local file on this visit: the page offers to play a local copy.
    assert page.locator("#sum-video").is_hidden()
    page.set_input_files("#sum-local", str(video))
    expect(page.locator("#sum-video")).to_be_visible()
    page.locator("#sum-captions li button").nth(1).click()
    page.wait_for_function("Math.abs(document.getElementById('sum-video').currentTime - 2) < 0.05")


def test_the_page_fits_a_phone(browser, service: Service, signed_in: dict[str, Any]) -> None:
    context = browser.new_context(viewport=PHONE, storage_state=signed_in)
    try:
        page = context.new_page()
        page.goto(f"{service.url}/ui/summaries")
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        screenshot(page, "summaries-phone")
    finally:
        context.close()


def test_the_transcript_under_the_timeline(
    page: Any, service: Service, speech_video: SpeechVideo
) -> None:
    """A video with speech: its segments listed under the timeline, in time order, each
    a button to its time; the speech subtitles offered as downloads."""
    service.open_gate(True)
    page.goto(f"{service.url}/ui/summaries")
    page.set_input_files("#sum-file", str(speech_video.path))
    page.fill("#sum-chunk", "5")
    page.fill("#sum-frames", "2")
    page.click("#sum-start")
    expect(page.locator("#sum-status")).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#sum-transcript-block")).to_be_visible()
    items = page.locator("#sum-transcript li")
    starts = [float(s) for s in items.evaluate_all("xs => xs.map(li => li.dataset.start)")]
    assert len(starts) >= len(speech_video.placed) and starts == sorted(starts)
    for placed in speech_video.placed:  # each sentence heard within half a second
        assert min(abs(start - placed.start_s) for start in starts) <= 0.5
    assert items.locator("button.seek.speech").count() == len(starts)
    page.wait_for_function("document.getElementById('sum-video').readyState >= 1")
    items.locator("button").nth(1).click()
    page.wait_for_function(
        f"Math.abs(document.getElementById('sum-video').currentTime - {starts[1]}) < 0.05"
    )
    assert page.locator("#sum-audio-note").is_hidden()
    links = page.locator("#sum-download-list a")
    exports = {a.get_attribute("data-export"): a.get_attribute("href") for a in links.all()}
    assert {"export.srt?track=speech", "export.vtt?track=speech"} <= set(exports)
    speech = page.request.get(service.url + exports["export.vtt?track=speech"])
    assert speech.status == 200 and speech.text().count(" --> ") == len(starts)
    screenshot(page, "summaries-transcript-desktop")
