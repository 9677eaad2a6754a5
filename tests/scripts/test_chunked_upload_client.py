"""The chunk upload client against the real app (in process), with a flaky network."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.clients.chunked_upload import (
    ChunkUploader,
    ProgressBar,
    UploadError,
    UploadOptions,
    default_upload_id,
    total_chunks_for,
)
from serve_app.accounts.context import AccountsContext
from serve_app.config import Settings
from serve_app.storage.db import Database
from serve_app.uploads.chunks import ChunkStore
from tests.support.databases import SESSION_KEY
from tests.support.media_files import make_video
from tests.support.uploads import ACCOUNT_SETTINGS, build_upload_app, new_user, send_chunk

ROOT = Path(__file__).resolve().parents[2]


class Network(httpx.AsyncBaseTransport):
    """The in-process app behind a network that fails on cue.

    ``plan`` maps a request number (1-based) to ``"connect"`` (fails before the
    server sees it), ``"lost"`` (the server handles it, the answer is lost) or an
    HTTP status the "proxy" answers with instead.
    """

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.plan: dict[int, str | int] = {}
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        action = self.plan.get(len(self.seen))
        if action == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if isinstance(action, int):
            return httpx.Response(action, json={"detail": "proxy says no"}, request=request)
        response = await self.inner.handle_async_request(request)
        if action == "lost":
            await response.aread()
            raise httpx.ReadTimeout("timed out", request=request)
        return response

    def posts(self) -> int:
        return sum(method == "POST" for method, _ in self.seen)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("client") / "clip.mp4", frames=60, width=160)


@pytest.fixture
def accounts(sqlite_template: Path, tmp_path: Path):
    path = tmp_path / "db.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    database = Database(f"sqlite:///{path}")
    yield AccountsContext.build(database, ACCOUNT_SETTINGS, SESSION_KEY)
    database.dispose()


@pytest.fixture
def app(tiny_engine, accounts, tmp_path):
    profile, engine = tiny_engine
    settings = Settings(data_dir=tmp_path / "data", accounts=ACCOUNT_SETTINGS)
    return build_upload_app(settings, accounts, {profile.name: (profile, engine)})


@pytest.fixture
def headers(accounts) -> dict[str, str]:
    return new_user(accounts, "client", credits=100)[0]


@pytest.fixture
async def network(app, headers):
    net = Network(app)
    async with httpx.AsyncClient(
        transport=net, base_url="http://test/", headers=headers, timeout=60
    ) as client:
        net.client = client  # type: ignore[attr-defined]
        yield net


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def uploader(network: Network, video: Path, sleeps: Sleeps | None = None, **options: Any):
    chunk_bytes = -(-video.stat().st_size // 3)
    opts = UploadOptions(chunk_bytes=chunk_bytes, upload_id="vid", **options)
    return ChunkUploader(network.client, opts, sleep=sleeps if sleeps is not None else Sleeps())  # type: ignore[attr-defined]


async def test_uploads_in_three_chunks_and_returns_the_analysis(network, video):
    body = await uploader(network, video, fields={"prompt": "What happens?"}).upload(video)
    assert body["result"].strip() and body["tokens_used"] == 10
    assert network.seen[0] == ("GET", "/api/uploads/vid")
    assert network.posts() == 3


async def test_resume_sends_only_the_missing_chunks(network, video, headers):
    data = video.read_bytes()
    size = -(-len(data) // 3)
    for n in (0, 2):
        chunk = data[n * size : (n + 1) * size]
        response = await send_chunk(network.client, headers, "vid", n, 3, chunk, video.name)
        assert response.status_code == 200
    network.seen.clear()
    body = await uploader(network, video).upload(video)
    assert body["result"].strip()
    assert [path for method, path in network.seen if method == "POST"] == ["/api/analyze"]


async def test_a_finished_upload_is_fetched_not_resent(network, video):
    first = await uploader(network, video).upload(video)
    network.seen.clear()
    assert await uploader(network, video).upload(video) == first
    assert network.seen == [("GET", "/api/uploads/vid")]


async def test_network_errors_and_5xx_are_retried_with_backoff(network, video):
    network.plan = {1: "connect", 3: 503, 4: "connect", 5: 502}
    sleeps = Sleeps()
    body = await uploader(network, video, sleeps, backoff_s=0.5).upload(video)
    assert body["result"].strip()
    assert sleeps == [0.5, 0.5, 1.0, 2.0]


async def test_a_lost_final_answer_is_recovered_without_a_second_charge(network, video, accounts):
    network.plan = {4: "lost"}  # GET, chunk 0, chunk 1, chunk 2 (answer lost)
    body = await uploader(network, video).upload(video)
    assert body["tokens_used"] == 10
    user = accounts.tokens.authenticate(
        network.client.headers["authorization"].split()[1]  # type: ignore[attr-defined]
    )
    assert accounts.credits.balance(user.user.id) == 90


async def test_waits_for_an_analysis_another_request_is_running(
    network, video, app, accounts, headers
):
    user_id = accounts.tokens.authenticate(headers["Authorization"].split()[1]).user.id
    settings: Settings = app.state.context.settings
    other_replica = ChunkStore(settings.uploads_dir, settings.uploads, settings.media)
    data = video.read_bytes()
    size = -(-len(data) // 3)
    for n in (0, 1):
        chunk = data[n * size : (n + 1) * size]
        await send_chunk(network.client, headers, "vid", n, 3, chunk, video.name)
    # Another replica holds the upload (as if our first final chunk were running there).
    claim = other_replica.claim(user_id, "vid")
    assert claim is not None

    async def finish_elsewhere(seconds: float) -> None:
        assembled = other_replica.assemble(claim, settings.spool_dir)
        body = {"result": "done elsewhere", "tokens_used": 0, "remaining_tokens": 100}
        other_replica.complete(claim, assembled, body)
        assembled.file.discard()

    sleeps = Sleeps()

    async def sleep(seconds: float) -> None:
        await sleeps(seconds)
        await finish_elsewhere(seconds)

    body = await uploader(network, video, sleep).upload(video)  # type: ignore[arg-type]
    assert body["result"] == "done elsewhere"
    assert sleeps == [2.0]


async def test_client_errors_are_not_retried(network, video):
    network.client.headers["authorization"] = "Bearer sa_wrong"  # type: ignore[attr-defined]
    with pytest.raises(UploadError) as info:
        await uploader(network, video).upload(video)
    assert info.value.status == 401
    assert len(network.seen) == 1


async def test_other_chunking_of_a_started_upload_is_refused(network, video, headers):
    await send_chunk(network.client, headers, "vid", 0, 5, video.read_bytes()[:100], video.name)
    with pytest.raises(UploadError, match="5 chunks"):
        await uploader(network, video).upload(video)


def test_default_upload_id_is_stable_and_valid(video):
    first = default_upload_id(video, 8 << 20)
    assert first == default_upload_id(video, 8 << 20) != default_upload_id(video, 4 << 20)
    assert len(first) <= 64 and first.replace("-", "").isalnum()
    assert total_chunks_for(0, 10) == 1 and total_chunks_for(21, 10) == 3


def test_progress_bar_on_a_pipe_prints_lines():
    out = io.StringIO()
    bar = ProgressBar(100 * 1024 * 1024, stream=out)
    for done in range(0, 101, 5):
        bar.update(done * 1024 * 1024)
    lines = out.getvalue().splitlines()
    assert 5 <= len(lines) <= 12
    assert lines[-1].startswith("[" + "#" * 30 + "] 100.0%")


def test_cli_parses_sizes_and_fields():
    spec = importlib.util.spec_from_file_location(
        "upload_client", ROOT / "scripts/upload_client.py"
    )
    assert spec is not None and spec.loader is not None
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.parse_size("8M") == 8 << 20
    assert cli.parse_size("512k") == 512 << 10
    assert cli.parse_size("1MiB") == 1 << 20
    args = cli.parse_args(["x.mp4", "--token", "t", "--interval", "5", "--chunk-size", "2M"])
    assert args.chunk_size == 2 << 20 and args.interval == 5 and args.token == "t"
