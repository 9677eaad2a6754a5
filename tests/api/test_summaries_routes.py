"""/api/video_summaries in process: preflight, submit, the SSE stream (every chunk before
the summary), partial results, exports read back by subtitle parsers, cancel, access."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import srt
import webvtt

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.settings import AccountSettings
from serve_app.config import Settings
from serve_app.engines.base import GenerationRequest, GenerationResult
from serve_app.frame_models.catalog import FrameModelCatalog
from serve_app.http.app import create_app
from serve_app.jobs.context import JobsContext
from serve_app.jobs.settings import JobSettings
from serve_app.jobs.worker.dispatch import ByKind
from serve_app.jobs.worker.loop import JobWorker
from serve_app.pipeline.describe import DescribePipeline
from serve_app.summaries.executor import SummaryExecutor
from serve_app.summaries.settings import SummarySettings
from tests.jobs.conftest import make_user
from tests.jobs.support import FAST_JOBS
from tests.summaries.support import Witness
from tests.support.databases import SESSION_KEY
from tests.support.media_files import make_video

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


class HeldWitness(Witness):
    """The real engine; captions from the ``hold_from``-th on wait for :attr:`release`."""

    def __init__(self, engine, hold_from: int) -> None:
        super().__init__(engine)
        self.hold_from = hold_from
        self.release = asyncio.Event()
        self.captions = 0

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        if request.video is not None:
            self.captions += 1
            if self.captions > self.hold_from:
                await self.release.wait()
        return await super().generate(request)


@dataclass
class Env:
    client: httpx.AsyncClient
    accounts: AccountsContext
    jobs: JobsContext
    worker: JobWorker
    witness: HeldWitness
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("videos") / "counter.mp4"
    return make_video(path, width=160, height=120, fps=30, frames=180).read_bytes()


@pytest.fixture
async def env(database, tmp_path: Path, tiny_engine) -> AsyncIterator[Env]:
    profile, engine = tiny_engine
    accounts = AccountsContext.build(
        database,
        AccountSettings(argon2_time_cost=1, argon2_memory_kib=8, rate_limit_burst=10_000),
        SESSION_KEY,
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        jobs=JobSettings(**FAST_JOBS),
        summaries=SummarySettings(chunks_in_flight=2),
    )
    jobs = JobsContext.build(
        settings,
        database,
        FrameModelCatalog(models=[]),
        profiles={profile.name: profile},
        default_model=profile.name,
    )
    witness = HeldWitness(engine, hold_from=1)
    executor = SummaryExecutor(
        jobs, settings.summaries, {profile.name: witness}, witness, profile.max_model_len
    )
    worker = JobWorker(jobs, ByKind(jobs.store, {"summary": executor}))
    pipeline = DescribePipeline.in_process(
        {profile.name: (profile, engine)}, profile.name, settings.media
    )
    app = create_app(pipeline, settings, accounts, jobs=jobs)
    user = make_user(accounts, credits=100)
    token = accounts.tokens.create(user.id, "t").token
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield Env(c, accounts, jobs, worker, witness, token)


async def upload(env: Env, video: bytes, token: str | None = None) -> str:
    auth = {"Authorization": f"Bearer {token or env.token}"}
    r = await env.client.post(
        "/video_upload_signed_url/", headers=auth, json={"file_name": "long.mp4"}
    )
    url = r.json()["signed_url"]
    assert (await env.client.put(url, content=video)).status_code == 200
    return url


def parse_sse(text: str) -> list[tuple[str | None, str, object]]:
    """``(id, event, data)`` of each event of a text/event-stream body."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            events.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return events


async def test_submit_stream_partial_results_and_exports(env: Env, video: bytes) -> None:
    url = await upload(env, video)
    body = {"input_url": url, "chunk_s": 2, "frames_per_chunk": 4, "language": "th"}
    preflight = await env.client.post("/api/video_summaries/preflight", headers=env.auth, json=body)
    assert preflight.status_code == 200, preflight.text
    assert (preflight.json()["chunks"], preflight.json()["estimated_credits"]) == (3, 11)
    r = await env.client.post("/api/video_summaries", headers=env.auth, json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["events_url"] == f"/api/video_summaries/{job_id}/events"

    run = asyncio.ensure_future(env.worker.drain())
    stream = asyncio.ensure_future(
        env.client.get(r.json()["events_url"], headers=env.auth, timeout=120)
    )
    # The first chunk is stored; the second is held: a partial result, readable now.
    status_url = f"/api/video_summaries/{job_id}"
    for _ in range(600):
        partial = (await env.client.get(status_url, headers=env.auth)).json()
        if partial["chunks_done"] == 1:
            break
        await asyncio.sleep(0.05)
    assert partial["job_status"] == "running" and partial["chunks_total"] == 3
    assert partial["eta_s"] is not None and partial["progress"] == round(1 / 3, 4)
    assert [c["index"] for c in partial["result"]["chunks"]] == [0]
    assert partial["result"]["summary"] is None and partial["result"]["chapters"] == []
    early = await env.client.get(f"{status_url}/export.srt", headers=env.auth)
    assert len(list(srt.parse(early.text))) == 1
    env.witness.release.set()
    await run
    response = await stream

    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [kind for _, kind, _ in events]
    chunk_ids = [event_id for event_id, kind, _ in events if kind == "chunk"]
    assert chunk_ids == ["0", "1", "2"]  # each chunk once, in order
    assert kinds.index("chapters") > kinds.index("chunk") + 2  # after every chunk
    assert kinds[-3:] == ["chapters", "summary", "done"]
    assert kinds[0] == "status" and "error" not in kinds
    summary = dict((kind, data) for _, kind, data in events)["summary"]
    assert summary["summary"] and "summary_translation" in summary

    done = (await env.client.get(status_url, headers=env.auth)).json()
    assert done["job_status"] == "succeeded" and done["credits_charged"] == 11
    result = done["result"]
    for fmt, parse in (("srt", lambda t: list(srt.parse(t))), ("vtt", webvtt.from_string)):
        r = await env.client.get(f"{status_url}/export.{fmt}", headers=env.auth)
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        cues = list(parse(r.text))
        assert len(cues) == len([c for c in result["chunks"] if c["caption"]])
    bilingual = await env.client.get(
        f"{status_url}/export.vtt", headers=env.auth, params={"variant": "bilingual"}
    )
    assert bilingual.status_code == 200
    chapters = await env.client.get(
        f"{status_url}/export.vtt", headers=env.auth, params={"track": "chapters"}
    )
    assert len(webvtt.from_string(chapters.text).captions) == len(result["chapters"])
    exported = await env.client.get(f"{status_url}/export.json", headers=env.auth)
    assert exported.json() == result

    # Reconnecting after chunk 1: only what follows it.
    again = await env.client.get(
        f"/api/video_summaries/{job_id}/events",
        headers={**env.auth, "Last-Event-ID": "1"},
    )
    resumed = parse_sse(again.text)
    assert [i for i, kind, _ in resumed if kind == "chunk"] == ["2"]
    assert [kind for _, kind, _ in resumed][-1] == "done"


async def test_cancel_access_budget_and_list(env: Env, video: bytes) -> None:
    url = await upload(env, video)
    over = await env.client.post(
        "/api/video_summaries",
        headers=env.auth,
        json={"input_url": url, "chunk_s": 2, "max_credits": 5},
    )
    assert over.status_code == 402 and "max_credits is 5" in over.json()["detail"]
    r = await env.client.post(
        "/api/video_summaries", headers=env.auth, json={"input_url": url, "chunk_s": 2}
    )
    job_id = r.json()["job_id"]
    assert env.accounts.credits.balance(1) == 100 - 11

    other = make_user(env.accounts, credits=5)
    token = env.accounts.tokens.create(other.id, "t").token
    theirs = {"Authorization": f"Bearer {token}"}
    for path in ("", "/events", "/export.json"):
        seen = await env.client.get(f"/api/video_summaries/{job_id}{path}", headers=theirs)
        assert seen.status_code == 404
    stolen = await env.client.post("/api/video_summaries", headers=theirs, json={"input_url": url})
    assert stolen.status_code == 403

    listed = (await env.client.get("/api/video_summaries", headers=env.auth)).json()
    assert [s["job_id"] for s in listed["summaries"]] == [job_id]
    cancelled = await env.client.delete(f"/api/video_summaries/{job_id}", headers=env.auth)
    assert cancelled.json()["job_status"] == "cancelled"
    assert env.accounts.credits.balance(1) == 100
    events = parse_sse(
        (await env.client.get(f"/api/video_summaries/{job_id}/events", headers=env.auth)).text
    )
    assert [kind for _, kind, _ in events] == ["status", "error"]
    bad = await env.client.post(
        "/api/video_summaries", headers=env.auth, json={"input_url": url, "chunk_s": 0.5}
    )
    assert bad.status_code == 400 and "chunk_s must be between" in bad.json()["detail"]
