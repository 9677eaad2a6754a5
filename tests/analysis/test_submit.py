"""The analyze use case's dispatch and housekeeping (HTTP-level cases: tests/api)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
from pathlib import Path

import pytest

from serve_app.accounts.users import User
from serve_app.analysis.params import AnalyzeParams
from serve_app.analysis.submit import AnalysisServices, AnalyzeForm, submit_analysis, sweep_if_due
from serve_app.config import Settings
from serve_app.errors import InvalidRequest, PermissionDenied
from serve_app.uploads.chunks import ChunkStore
from serve_app.uploads.settings import UploadSettings


class Bytes:
    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    async def read(self, size: int = -1) -> bytes:
        return self._buf.read(size)


class NoPipeline:
    """Nothing here may reach a model."""

    model_names = ("m",)
    default_model = "m"

    async def describe(self, job):  # pragma: no cover - must not be called
        raise AssertionError("the model was called")

    async def readiness(self) -> dict[str, bool]:  # pragma: no cover
        return {}


def user(admin: bool = False) -> User:
    return User(1, "u", admin, 100, dt.datetime.now(dt.UTC))


@pytest.fixture
def services(tmp_path: Path) -> AnalysisServices:
    settings = Settings(data_dir=tmp_path, allowed_media_roots=[tmp_path])
    store = ChunkStore(settings.uploads_dir, settings.uploads, settings.media)
    return AnalysisServices(NoPipeline(), settings.analysis, None, store)  # type: ignore[arg-type]


CHUNK = {"upload_id": "u", "chunk_number": 0, "total_chunks": 1}


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"file_path": "/x.jpg", "file": Bytes(b"x")}, "not both"),
        ({"chunk_number": 0}, "need an upload_id"),
        ({"upload_id": "u", "chunk_number": 0}, "a chunk needs"),
        (CHUNK, "a chunk needs"),
        ({}, "file is required"),
        ({**CHUNK, "file": Bytes(b"x"), "chunk_sha256": "zz"}, "64 hexadecimal"),
        ({**CHUNK, "file": Bytes(b"x")}, "unknown model_path"),
    ],
)
async def test_bad_combinations_fail_before_any_disk_or_model_work(
    services, tmp_path, fields, needle
):
    params = AnalyzeParams(model="nope") if "unknown" in needle else AnalyzeParams()
    with pytest.raises(InvalidRequest, match=needle):
        await submit_analysis(services, user(), AnalyzeForm(params=params, **fields))
    assert not (tmp_path / "uploads").exists()  # Settings.uploads_dir


async def test_file_path_needs_an_admin(services, tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 10)
    form = AnalyzeForm(params=AnalyzeParams(), file_path=str(tmp_path / "a.jpg"))
    with pytest.raises(PermissionDenied, match="administrators"):
        await submit_analysis(services, user(admin=False), form)


async def test_sweep_runs_in_a_worker_once_per_interval(tmp_path):
    now = [time.time()]
    settings = UploadSettings(ttl_s=10, cleanup_interval_s=3600)
    store = ChunkStore(tmp_path, settings, Settings().media, clock=lambda: now[0])
    abandoned = tmp_path / "user" / "upload"
    abandoned.mkdir(parents=True)
    (abandoned / "chunk-000000").write_bytes(b"x")
    now[0] += 11
    sweep_if_due(store)
    for _ in range(100):
        if not abandoned.exists():
            break
        await asyncio.sleep(0.01)
    assert not abandoned.exists()
    assert not store.cleanup_due()
