"""Chunked uploads on POST /api/analyze: the real app, tiny model, both databases.

Every hostile case checks its status and what is left: media files on disk (chunks,
staging, spool) and credits (balance, ledger, reservations).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.config import Settings
from serve_app.media.limits import MediaLimits
from serve_app.uploads.chunks import ChunkStore
from serve_app.uploads.settings import UploadSettings
from tests.support.databases import SESSION_KEY
from tests.support.media_files import (
    make_image,
    make_png_header_bomb,
    make_video,
    truncate_file,
)
from tests.support.uploads import (
    ACCOUNT_SETTINGS,
    build_upload_app,
    client_for,
    leftovers,
    media_leftovers,
    new_user,
    reservations,
    send_chunk,
    sha256,
    split,
)

KIB = 1024


class Clock:
    """Epoch seconds that a test moves forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        accounts=ACCOUNT_SETTINGS,
        max_request_bytes=3 * 1024 * KIB,
        media=MediaLimits(max_image_bytes=1024 * KIB, max_video_bytes=2048 * KIB),
        uploads=UploadSettings(
            max_chunk_bytes=400 * KIB, max_chunks=64, ttl_s=3600, max_open_uploads=3
        ),
    )


@pytest.fixture
def accounts(database) -> AccountsContext:
    return AccountsContext.build(database, ACCOUNT_SETTINGS, SESSION_KEY)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(tiny_engine, settings: Settings, accounts: AccountsContext, clock: Clock):
    profile, engine = tiny_engine
    app = build_upload_app(settings, accounts, {profile.name: (profile, engine)})
    app.state.chunk_store = ChunkStore(
        settings.uploads_dir, settings.uploads, settings.media, clock=clock
    )
    async with client_for(app) as client:
        yield client


@pytest.fixture
def alice(accounts) -> tuple[dict[str, str], int]:
    return new_user(accounts, "alice", credits=100)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("chunk-media")
    video = make_video(root / "clip.mp4", frames=60, width=160, height=120)
    jpeg = make_image(root / "a.jpg", "jpeg", 200, 150)
    return {
        "video": video.read_bytes(),
        "jpeg": jpeg.read_bytes(),
        "png": make_image(root / "a.png", "png", 64, 48).read_bytes(),
        "truncated_video": truncate_file(video, root / "cut.mp4", 0.3).read_bytes(),
        "truncated_jpeg": jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2],
        "bomb": make_png_header_bomb(root / "bomb.png").read_bytes(),
    }


def uploads_root(settings: Settings) -> Path:
    return settings.uploads_dir


async def test_chunks_in_any_order_then_one_charged_analysis(api, accounts, settings, alice, media):
    headers, user_id = alice
    parts = split(media["video"], 3)
    first = await send_chunk(api, headers, "clip-1", 2, 3, parts[2])
    assert first.status_code == 200, first.text
    assert first.json() == {
        "upload_id": "clip-1",
        "received_chunks": [2],
        "total_chunks": 3,
        "complete": False,
    }
    second = await send_chunk(api, headers, "clip-1", 0, 3, parts[0])
    assert second.json()["received_chunks"] == [0, 2]
    assert accounts.credits.balance(user_id) == 100  # nothing charged yet
    final = await send_chunk(api, headers, "clip-1", 1, 3, parts[1], prompt="What happens?")
    assert final.status_code == 200, final.text
    body = final.json()
    assert body["result"].strip()
    assert body["tokens_used"] == 10 and body["remaining_tokens"] == 90
    assert accounts.credits.balance(user_id) == accounts.credits.ledger_sum(user_id) == 90
    status = (await api.get("/api/uploads/clip-1", headers=headers)).json()
    assert status["state"] == "done" and status["complete"]
    assert status["result"] == body
    assert status["received_bytes"] == len(media["video"])
    assert media_leftovers(uploads_root(settings)) == []
    assert list(settings.spool_dir.glob("*")) == []


async def test_duplicate_chunk_is_harmless(api, settings, alice, media):
    headers, _ = alice
    parts = split(media["video"], 3)
    for _ in range(2):
        response = await send_chunk(api, headers, "dup", 0, 3, parts[0])
        assert response.status_code == 200
        assert response.json()["received_chunks"] == [0]
    status = (await api.get("/api/uploads/dup", headers=headers)).json()
    assert status["received_bytes"] == len(parts[0])
    assert len(media_leftovers(uploads_root(settings))) == 1


async def test_conflicting_chunk_is_409_and_keeps_the_first(api, settings, alice, media):
    headers, _ = alice
    parts = split(media["video"], 3)
    assert (await send_chunk(api, headers, "c", 1, 3, parts[1])).status_code == 200
    other = await send_chunk(api, headers, "c", 1, 3, parts[1][:-1] + b"X")
    assert other.status_code == 409
    assert "different bytes" in other.json()["detail"]
    status = (await api.get("/api/uploads/c", headers=headers)).json()
    assert status["received_bytes"] == len(parts[1])
    assert len(media_leftovers(uploads_root(settings))) == 1


@pytest.mark.parametrize(
    ("change", "needle"), [({"total": 4}, "total_chunks"), ({"filename": "b.mp4"}, "filename")]
)
async def test_changing_total_or_filename_is_409(api, alice, media, change, needle):
    headers, _ = alice
    parts = split(media["video"], 3)
    assert (await send_chunk(api, headers, "m", 0, 3, parts[0])).status_code == 200
    response = await send_chunk(
        api,
        headers,
        "m",
        1,
        change.get("total", 3),
        parts[1],
        filename=change.get("filename", "clip.mp4"),
    )
    assert response.status_code == 409
    assert needle in response.json()["detail"]


async def test_missing_chunks_at_the_end_run_nothing(api, accounts, alice, media):
    headers, user_id = alice
    parts = split(media["video"], 4)
    for n in (0, 3):
        assert (await send_chunk(api, headers, "gap", n, 4, parts[n])).json()["complete"] is False
    status = (await api.get("/api/uploads/gap", headers=headers)).json()
    assert status["received_chunks"] == [0, 3] and status["state"] == "receiving"
    assert status["result"] is None
    assert reservations(accounts, user_id) == 0


@pytest.mark.parametrize(
    ("number", "total"),
    [("3", "3"), ("-1", "3"), ("0", "0"), ("0", "65"), ("0", str(10**30)), ("x", "3")],
)
async def test_out_of_range_numbers_are_400(api, settings, alice, media, number, total):
    headers, _ = alice
    response = await api.post(
        "/api/analyze",
        data={"upload_id": "r", "chunk_number": number, "total_chunks": total},
        files={"file": ("blob", media["video"][:1000])},
        headers=headers,
    )
    assert response.status_code == 400, response.text
    assert leftovers(uploads_root(settings)) == []


async def test_oversized_chunk_is_413_and_leaves_nothing(api, settings, alice, media):
    headers, _ = alice
    big = media["video"][:32] + b"\0" * (401 * KIB)
    response = await send_chunk(api, headers, "big", 0, 2, big)
    assert response.status_code == 413
    assert "chunk 0" in response.json()["detail"]
    assert leftovers(uploads_root(settings)) == []


async def test_total_over_the_type_limit_is_413_at_the_first_violating_chunk(
    api, settings, alice, media
):
    headers, _ = alice
    # A JPEG (limit 1 MiB here) declared in 8 chunks of 300 KiB: the 4th crosses 1 MiB.
    chunk = media["jpeg"] + b"\0" * (300 * KIB - len(media["jpeg"]))
    for n in range(3):
        ok = await send_chunk(api, headers, "huge", n, 8, chunk, filename="a.jpg")
        assert ok.status_code == 200, ok.text
    over = await send_chunk(api, headers, "huge", 3, 8, chunk, filename="a.jpg")
    assert over.status_code == 413
    assert "limit" in over.json()["detail"]
    assert leftovers(uploads_root(settings)) == []
    later = await send_chunk(api, headers, "huge", 4, 8, chunk, filename="a.jpg")
    assert later.status_code == 410


@pytest.mark.parametrize(
    "upload_id", ["../x", "/etc/passwd", "a\0b", "x" * 65, "a\u202eb", "a b", "a/b", ".."]
)
async def test_hostile_upload_ids_are_400(api, settings, alice, media, upload_id):
    headers, _ = alice
    response = await send_chunk(api, headers, upload_id, 0, 2, media["video"][:5000])
    assert response.status_code == 400
    assert "upload_id" in response.json()["detail"]
    assert leftovers(uploads_root(settings)) == []


async def test_hostile_upload_id_in_status_path_is_400_or_404(api, alice):
    headers, _ = alice
    assert (await api.get("/api/uploads/a%00b", headers=headers)).status_code == 400
    assert (await api.get("/api/uploads/..%2Fx", headers=headers)).status_code in (400, 404)


@pytest.mark.parametrize(
    "filename", ["../../x.mp4", "/etc/passwd", "clip\u202e4pm.mp4", "..\\..\\x.mp4"]
)
async def test_hostile_filenames_are_only_escaped_metadata(
    api, settings, alice, media, tmp_path, filename
):
    headers, _ = alice
    parts = split(media["video"], 2)
    response = await send_chunk(api, headers, "names", 0, 2, parts[0], filename=filename)
    assert response.status_code == 200, response.text
    status = (await api.get("/api/uploads/names", headers=headers)).json()
    assert "\u202e" not in status["filename"]
    if "\u202e" in filename:
        assert status["filename"] == "clip\\u202e4pm.mp4"
    stored = leftovers(uploads_root(settings))
    assert all("passwd" not in p and "x.mp4" not in p and ".." not in p for p in stored)
    assert not (settings.data_dir / "x.mp4").exists() and not (tmp_path / "x.mp4").exists()
    final = await send_chunk(api, headers, "names", 1, 2, parts[1], filename=filename)
    assert final.status_code == 200, final.text


@pytest.mark.parametrize(("filename", "needle"), [("a\0.mp4", "NUL"), ("x" * 300, "longer")])
async def test_nul_or_very_long_filename_is_400(api, settings, alice, media, filename, needle):
    headers, _ = alice
    response = await send_chunk(api, headers, "bad-name", 0, 2, media["video"][:5000], filename)
    assert response.status_code == 400
    assert needle in response.json()["detail"]
    assert leftovers(uploads_root(settings)) == []


async def test_same_upload_id_of_two_users_is_two_uploads(api, accounts, alice, media):
    headers, _ = alice
    bob, _ = new_user(accounts, "bob", credits=100)
    parts = split(media["video"], 3)
    assert (await send_chunk(api, headers, "same", 0, 3, parts[0])).status_code == 200
    assert (await api.get("/api/uploads/same", headers=bob)).status_code == 404
    # Bob's "same" is his own: other total_chunks and bytes, no conflict.
    mine = await send_chunk(api, bob, "same", 0, 2, media["jpeg"], filename="a.jpg")
    assert mine.status_code == 200 and mine.json()["total_chunks"] == 2
    assert (await api.get("/api/uploads/same", headers=headers)).json()["total_chunks"] == 3


async def test_expired_upload_is_410_and_removed(api, settings, alice, media, clock):
    headers, _ = alice
    parts = split(media["video"], 3)
    assert (await send_chunk(api, headers, "old", 0, 3, parts[0])).status_code == 200
    clock.now += 3601
    late = await send_chunk(api, headers, "old", 1, 3, parts[1])
    assert late.status_code == 410
    assert "expired" in late.json()["detail"]
    assert (await api.get("/api/uploads/old", headers=headers)).status_code == 410
    assert leftovers(uploads_root(settings)) == []


async def test_cleanup_sweeps_abandoned_uploads(api, settings, alice, media, clock):
    headers, _ = alice
    await send_chunk(api, headers, "abandoned", 0, 3, split(media["video"], 3)[0])
    store = ChunkStore(settings.uploads_dir, settings.uploads, settings.media, clock=clock)
    assert store.cleanup() == 0
    clock.now += 3601
    assert store.cleanup() == 1
    assert leftovers(uploads_root(settings)) == []


async def test_concurrent_final_chunks_analyse_and_charge_once(api, accounts, alice, media):
    headers, user_id = alice
    parts = split(media["video"], 3)
    for n in (0, 1):
        assert (await send_chunk(api, headers, "race", n, 3, parts[n])).status_code == 200
    a, b = await asyncio.gather(
        send_chunk(api, headers, "race", 2, 3, parts[2]),
        send_chunk(api, headers, "race", 2, 3, parts[2]),
    )
    statuses = sorted([a.status_code, b.status_code])
    assert statuses in ([200, 200], [200, 409]), (a.text, b.text)
    ok = [r for r in (a, b) if r.status_code == 200]
    if len(ok) == 2:  # the second came after the first had finished: replayed
        assert ok[0].json() == ok[1].json()
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in ok) == 1
    else:
        loser = a if a.status_code == 409 else b
        assert "being analysed" in loser.json()["detail"]
    assert accounts.credits.balance(user_id) == accounts.credits.ledger_sum(user_id) == 90
    assert reservations(accounts, user_id) == 1
    # Re-sending a chunk after completion replays the response without a charge.
    again = await send_chunk(api, headers, "race", 2, 3, parts[2])
    assert again.status_code == 200 and again.json() == ok[0].json()
    assert again.headers["idempotent-replayed"] == "true"
    assert accounts.credits.balance(user_id) == 90


async def test_checksum_mismatch_is_400_and_the_chunk_discarded(api, settings, alice, media):
    headers, _ = alice
    parts = split(media["video"], 2)
    wrong = await send_chunk(api, headers, "sum", 0, 2, parts[0], chunk_sha256=sha256(b"x"))
    assert wrong.status_code == 400
    assert "chunk_sha256" in wrong.json()["detail"]
    assert leftovers(uploads_root(settings)) == []
    malformed = await send_chunk(api, headers, "sum", 0, 2, parts[0], chunk_sha256="abc")
    assert malformed.status_code == 400
    right = await send_chunk(api, headers, "sum", 0, 2, parts[0], chunk_sha256=sha256(parts[0]))
    assert right.status_code == 200


@pytest.mark.parametrize(
    ("kind", "filename", "status"),
    [
        ("png", "movie.mp4", 400),  # PNG bytes named .mp4: refused at chunk 0
        ("truncated_video", "clip.mp4", 422),
        ("truncated_jpeg", "a.jpg", 422),
        ("bomb", "bomb.png", 413),
    ],
)
async def test_bad_media_is_refused_without_charge_or_leftovers(
    api, accounts, settings, alice, media, kind, filename, status
):
    headers, user_id = alice
    parts = split(media[kind], 2)
    responses = [
        await send_chunk(api, headers, "bad", n, 2, part, filename=filename)
        for n, part in enumerate(parts)
    ]
    assert responses[-1].status_code == status or responses[0].status_code == status
    assert accounts.credits.balance(user_id) == accounts.credits.ledger_sum(user_id) == 100
    if kind != "truncated_jpeg":  # detected at decode, after a (released) reservation
        assert reservations(accounts, user_id) == 0
    assert leftovers(uploads_root(settings)) == []
    assert list(settings.spool_dir.glob("*")) == []
    # The upload was discarded: later chunks are told so.
    assert (await send_chunk(api, headers, "bad", 0, 2, parts[0], filename)).status_code == 410


async def test_empty_chunk_is_400(api, settings, alice):
    headers, _ = alice
    response = await send_chunk(api, headers, "empty", 0, 1, b"")
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]
    assert leftovers(uploads_root(settings)) == []


async def test_failed_analysis_keeps_chunks_and_a_resent_chunk_retries(
    api, accounts, settings, media
):
    headers, user_id = new_user(accounts, "carol", credits=5)
    parts = split(media["video"], 2)
    assert (await send_chunk(api, headers, "retry", 0, 2, parts[0])).status_code == 200
    broke = await send_chunk(api, headers, "retry", 1, 2, parts[1])
    assert broke.status_code == 402
    status = (await api.get("/api/uploads/retry", headers=headers)).json()
    assert status["complete"] and status["state"] == "receiving"
    accounts.credits.grant(user_id, 5)
    again = await send_chunk(api, headers, "retry", 1, 2, parts[1])
    assert again.status_code == 200, again.text
    assert accounts.credits.balance(user_id) == 0


async def test_too_many_unfinished_uploads_is_429(api, alice, media):
    headers, _ = alice
    part = split(media["video"], 2)[0]
    for n in range(3):
        assert (await send_chunk(api, headers, f"open-{n}", 0, 2, part)).status_code == 200
    response = await send_chunk(api, headers, "open-3", 0, 2, part)
    assert response.status_code == 429
    assert response.headers["retry-after"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"chunk_number": "0", "total_chunks": "2"}, "upload_id"),
        ({"upload_id": "u", "total_chunks": "2"}, "chunk_number"),
        ({"file_path": "/x.jpg", "upload_id": "u"}, "file_path"),
    ],
)
async def test_inconsistent_fields_are_400(api, alice, media, data, needle):
    headers, _ = alice
    response = await api.post(
        "/api/analyze", data=data, files={"file": ("a.jpg", media["jpeg"])}, headers=headers
    )
    assert response.status_code == 400
    assert needle in response.json()["detail"]


async def test_unknown_upload_is_404_and_auth_is_required(api, alice):
    headers, _ = alice
    assert (await api.get("/api/uploads/nope", headers=headers)).status_code == 404
    assert (await api.get("/api/uploads/nope")).status_code == 401


async def test_openapi_documents_chunks_and_status(api):
    spec = (await api.get("/openapi.json")).json()
    analyze = spec["paths"]["/api/analyze"]["post"]
    assert {"409", "410", "413"} <= set(analyze["responses"])
    assert "/api/uploads/{upload_id}" in spec["paths"]
