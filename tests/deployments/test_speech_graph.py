"""``audio=transcribe`` on the real Ray Serve graph: AudioTranscriber beside the extractor."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import jiwer
import pytest

from serve_app.app import AppArgs, ModelEntry, build_app
from tests.support.graphs import FAST_ACCOUNTS, create_api_token, tiny_profile
from tests.support.speech_media import SpeechVideo, corrupt_audio_packets

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "speech_fusion"
SETTINGS = {
    "inline_media_bytes": 8_000,  # the speech video goes by path: shipped to both replicas
    "accounts": FAST_ACCOUNTS,
    "speech": {"backend": "pocketsphinx", "chunk_s": 10},
}


@pytest.fixture(scope="module")
def graph(
    ray_serve: int, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    from ray import serve

    settings = {"data_dir": str(tmp_path_factory.mktemp("data")), **SETTINGS}
    token, _ = create_api_token(settings, "admin", admin=True)
    args = AppArgs(
        models=[ModelEntry(profile=tiny_profile(tiny_model_dir))],
        story_model=None,
        settings=settings,
    )
    serve.run(build_app(args), name=APP, route_prefix=f"/{APP}")
    try:
        yield f"http://127.0.0.1:{ray_serve}/{APP}", token
    finally:
        serve.delete(APP)


def test_analyze_transcribes_on_the_graph(
    graph: tuple[str, str], speech_video: SpeechVideo, tmp_path: Path
) -> None:
    url, token = graph
    headers = {"Authorization": f"Bearer {token}"}
    bad = corrupt_audio_packets(speech_video.path, tmp_path / "bad.mp4")
    bodies = []
    for path in (speech_video.path, bad):
        response = httpx.post(
            f"{url}/api/analyze",
            files={"file": (path.name, path.read_bytes())},
            data={"audio": "transcribe"},
            headers=headers,
            timeout=180,
        )
        assert response.status_code == 200, response.text
        bodies.append(response.json())
    heard, skipped = bodies
    said = " ".join(s["text"] for s in heard["transcript"]["segments"])
    assert jiwer.wer(speech_video.reference, said) < 0.6
    assert heard["transcript"]["skipped"] is None
    assert skipped["result"]
    assert skipped["transcript"] == {
        "segments": [],
        "skipped": "audio skipped: the audio track is corrupt",
    }


def test_chat_transcribes_on_the_graph(graph: tuple[str, str], speech_video: SpeechVideo) -> None:
    url, token = graph
    video = base64.b64encode(speech_video.path.read_bytes()).decode()
    body = {
        "model": "tiny-qwen2.5-vl",
        "audio": "transcribe",
        "max_tokens": 4,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{video}"}},
                    {"type": "text", "text": "What is said?"},
                ],
            }
        ],
    }
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=180,
    )
    assert response.status_code == 200, response.text
    transcript = response.json()["transcript"]
    assert transcript["skipped"] is None
    said = " ".join(s["text"] for s in transcript["segments"])
    assert jiwer.wer(speech_video.reference, said) < 0.6
