"""POST /api/analyze through the real app, tiny model in process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.media_files import make_image, make_png_header_bomb, make_video, truncate_file


async def analyze(client: httpx.AsyncClient, path: Path, name: str | None = None, **fields: str):
    return await client.post(
        "/api/analyze", files={"file": (name or path.name, path.read_bytes())}, data=fields
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("files")
    video = make_video(root / "clip.mp4", frames=60, width=160, height=120)
    return {
        "jpeg": make_image(root / "a.jpg", "jpeg", 80, 60),
        "png": make_image(root / "a.png", "png", 80, 60),
        "webp": make_image(root / "a.webp", "webp", 80, 60),
        "video": video,
        "truncated": truncate_file(video, root / "cut.mp4", 0.3),
        "bomb": make_png_header_bomb(root / "bomb.png"),
    }


@pytest.mark.parametrize("kind", ["jpeg", "png", "webp", "video"])
async def test_media_is_described(client, files, kind) -> None:
    response = await analyze(client, files[kind])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"].strip()
    documented = {"result": body["result"], "tokens_used": 0, "remaining_tokens": 0}
    if kind == "video":  # an added key says which frames the model saw
        assert body.pop("sampling")["frame_indices"]
    assert body == documented


async def test_a_video_answer_says_which_frames_were_sampled(client, files) -> None:
    """60 frames at 30 fps, every 10th: the exact source indices and their true times."""
    response = await analyze(client, files["video"], interval="10")
    assert response.status_code == 200, response.text
    sampling = response.json()["sampling"]
    assert sampling["frame_indices"] == [0, 10, 20, 30, 40, 50]
    assert sampling["timestamps"] == pytest.approx([i / 30 for i in range(0, 60, 10)], abs=1e-3)
    assert sampling["fps"] == pytest.approx(3.0, rel=1e-3)
    assert sampling["source_fps"] == pytest.approx(30.0)
    assert (sampling["requested_frames"], sampling["thinned"]) == (6, False)


async def test_a_video_answer_says_when_the_frame_budget_thinned_the_interval(
    client, files
) -> None:
    response = await analyze(client, files["video"], interval="1")
    assert response.status_code == 200, response.text
    sampling = response.json()["sampling"]
    used = sorted(set(sampling["frame_indices"]))
    assert (sampling["requested_frames"], sampling["thinned"]) == (60, True)
    assert 2 <= len(used) < 60 and used[0] == 0 and used[-1] == 59  # spread, ends kept
    assert sampling["fps"] < 30.0


async def test_prompt_and_interval_are_accepted(client, files) -> None:
    response = await analyze(client, files["video"], prompt="Count the frames.", interval="20")
    assert response.status_code == 200, response.text


async def test_unknown_model_is_400_with_valid_names(client, files) -> None:
    response = await analyze(client, files["jpeg"], model_path="Qwen/Nope")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "tiny-qwen2.5-vl" in detail and "down-model" in detail


@pytest.mark.parametrize("interval", ["0", "-3", "ten", "1.5"])
async def test_bad_interval_is_400(client, files, interval) -> None:
    response = await analyze(client, files["video"], interval=interval)
    assert response.status_code == 400
    assert "interval" in response.json()["detail"]


async def test_missing_file_is_400(client) -> None:
    response = await client.post("/api/analyze", data={"prompt": "hi"})
    assert response.status_code == 400
    assert "file" in response.json()["detail"]


async def test_text_named_jpg_is_400(client, tmp_path) -> None:
    fake = tmp_path / "x.jpg"
    fake.write_text("hello, I am text")
    response = await analyze(client, fake)
    assert response.status_code == 400


async def test_png_bytes_named_mp4_is_400(client, files) -> None:
    response = await analyze(client, files["png"], name="movie.mp4")
    assert response.status_code == 400


async def test_empty_file_is_422(client, tmp_path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    response = await analyze(client, empty)
    assert response.status_code == 422
    assert "empty" in response.json()["detail"]


async def test_truncated_video_is_422(client, files) -> None:
    response = await analyze(client, files["truncated"])
    assert response.status_code == 422, response.text


async def test_decompression_bomb_header_is_413(client, files) -> None:
    response = await analyze(client, files["bomb"])
    assert response.status_code == 413


async def test_oversized_image_is_413(client, tmp_path) -> None:
    big = tmp_path / "big.png"
    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big)
    assert big.stat().st_size > 1024 * 1024
    response = await analyze(client, big)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


async def test_request_over_body_limit_is_413(client) -> None:
    response = await client.post(
        "/api/analyze", files={"file": ("a.mp4", b"\0" * (4 * 1024 * 1024))}
    )
    assert response.status_code == 413


async def test_unavailable_backend_is_503_with_retry_after(client, files) -> None:
    response = await analyze(client, files["jpeg"], model_path="down-model")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text


async def test_spool_is_empty_after_requests(client, files, settings) -> None:
    await analyze(client, files["jpeg"])
    await analyze(client, files["truncated"])
    assert list(settings.spool_dir.glob("*")) == []


async def test_health_and_readiness(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    # The OpenAI-compatible backend points at a closed port: not ready.
    assert ready.status_code == 503
    assert ready.json()["components"] == {"tiny-qwen2.5-vl": True, "down-model": False}
    assert ready.headers["retry-after"]


async def test_openapi_documents_analyze(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/analyze"]["post"]
    assert {"400", "413", "422", "503"} <= set(operation["responses"])
