"""Helpers for upload tests: an app with accounts, users, chunk requests, leftovers."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.models import ReservationRow
from serve_app.accounts.settings import AccountSettings
from serve_app.accounts.users import create_user
from serve_app.config import Settings
from serve_app.engines.base import Engine
from serve_app.engines.profile import ModelProfile
from serve_app.http.app import create_app
from serve_app.pipeline.describe import DescribePipeline
from serve_app.uploads.chunks import ChunkStore
from serve_app.uploads.state import ChunkRequest

ACCOUNT_SETTINGS = AccountSettings(
    argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1, rate_limit_burst=10_000
)


def build_upload_app(
    settings: Settings,
    accounts: AccountsContext,
    models: dict[str, tuple[ModelProfile, Engine]],
) -> FastAPI:
    pipeline = DescribePipeline.in_process(models, next(iter(models)), settings.media)
    return create_app(pipeline, settings, accounts)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120)


def new_user(
    accounts: AccountsContext, username: str, credits: int = 100, admin: bool = False
) -> tuple[dict[str, str], int]:
    """Bearer headers and the id of a new user."""
    user = create_user(
        accounts.database,
        accounts.passwords,
        username,
        "password-" + username,
        is_admin=admin,
        credits=credits,
    )
    token = accounts.tokens.create(user.id, "tests").token
    return {"Authorization": f"Bearer {token}"}, user.id


def reservations(accounts: AccountsContext, user_id: int) -> int:
    """How many credit reservations were ever made for the user."""
    with accounts.database.transaction() as session:
        query = select(func.count()).select_from(ReservationRow)
        count = session.scalar(query.where(ReservationRow.user_id == user_id))
        return int(count or 0)


def split(data: bytes, parts: int) -> list[bytes]:
    size = -(-len(data) // parts)
    return [data[i * size : (i + 1) * size] for i in range(parts)]


async def send_chunk(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    upload_id: str,
    number: int,
    total: int,
    data: bytes,
    filename: str = "clip.mp4",
    **fields: str,
) -> httpx.Response:
    form = {
        "upload_id": upload_id,
        "chunk_number": str(number),
        "total_chunks": str(total),
        "filename": filename,
        **fields,
    }
    return await client.post(
        "/api/analyze", data=form, files={"file": ("blob", data)}, headers=headers
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(root: Path) -> list[str]:
    """Files under ``root`` except tombstones (``*.gone``: a few bytes, no media)."""
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".gone"
    )


def media_leftovers(root: Path) -> list[str]:
    """Files that hold media bytes: chunks, staging and spooled files."""
    return [
        name
        for name in leftovers(root)
        if Path(name).name.startswith("chunk-") or name.endswith(".upload")
    ]


class Clock:
    """Epoch seconds that a test moves forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


JPEG_HEAD = b"\xff\xd8\xff\xe0" + b"\0" * 60


def put_part(store: ChunkStore, tmp_path: Path, n: int, total: int, data: bytes, **kw: Any):
    """``store.put_chunk`` of ``data`` as chunk ``n`` (user 1, upload "u1" unless given)."""
    part = tmp_path / f"part-{n}-{uuid.uuid4().hex}"
    part.write_bytes(data)
    request = ChunkRequest(
        upload_id=kw.pop("upload_id", "u1"),
        chunk_number=n,
        total_chunks=total,
        filename=kw.pop("filename", "a.jpg"),
    )
    try:
        return store.put_chunk(kw.pop("user_id", 1), request, part, kw.pop("sha", None))
    finally:
        part.unlink()


def finish(store: ChunkStore, tmp_path: Path, user_id: int = 1, upload_id: str = "u1") -> None:
    """Claim, assemble and complete an upload as the analysing request would."""
    claim = store.claim(user_id, upload_id)
    assert claim is not None
    assembled = store.assemble(claim, tmp_path / "spool")
    store.complete(claim, assembled, {"result": "ok"})
    assembled.file.discard()
