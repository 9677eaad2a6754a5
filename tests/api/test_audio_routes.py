"""``audio=transcribe`` on ``/api/analyze`` and ``/analyze/``: the video's speech fused in.

Real components in process: pocketsphinx through :class:`EngineSpeech`, the tiny
Qwen2.5-VL (wrapped to record the prompts it got), espeak-ng speech at known times.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jiwer
import pytest

from serve_app.accounts.context import AccountsContext, open_accounts
from serve_app.config import Settings
from serve_app.engines.base import MediaSlot
from serve_app.http.app import create_app
from serve_app.media.limits import MediaLimits
from serve_app.pipeline.describe import DescribePipeline
from serve_app.pipeline.speech import NOT_ENABLED
from serve_app.speech.backend import EngineSpeech
from serve_app.speech.pocketsphinx_engine import PocketsphinxEngine
from serve_app.story.pipeline import StoryPipeline
from tests.api.test_analyze_credits import ACCOUNT_SETTINGS, bearer
from tests.support.media_files import make_image
from tests.support.speech_media import SpeechVideo, corrupt_audio_packets, make_speech_video
from tests.support.story_engines import RecordingEngine

#: As in tests/speech/test_pocketsphinx_engine.py (measured 0.54 on this video).
WER_THRESHOLD = 0.6


@pytest.fixture(scope="module")
async def speech() -> AsyncIterator[EngineSpeech]:
    engine = PocketsphinxEngine()
    await engine.start()
    yield EngineSpeech(engine, chunk_s=10.0)
    await engine.shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        accounts=ACCOUNT_SETTINGS,
        media=MediaLimits(max_video_bytes=8 * 1024 * 1024),
    )


@pytest.fixture
def accounts(settings: Settings) -> AccountsContext:
    ctx = open_accounts(settings)
    yield ctx
    ctx.close()


class App:
    """The real app over the tiny model (prompts recorded), with or without speech."""

    def __init__(
        self, tiny_engine, settings: Settings, accounts: AccountsContext, speech, user: str
    ) -> None:
        profile, engine = tiny_engine
        self.vision = RecordingEngine(engine)
        self.writer = RecordingEngine(engine)
        models = {profile.name: (profile, self.vision)}
        pipeline = DescribePipeline.in_process(models, profile.name, settings.media)
        story = StoryPipeline.in_process(pipeline, profile, self.writer)
        app = create_app(pipeline, settings, accounts, story=story, speech=speech)
        self.headers = bearer(accounts, user, 1000)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://test",
            timeout=120,
            headers=self.headers,
        )

    async def analyze(self, path: Path, **fields: str) -> httpx.Response:
        files = {"file": (path.name, path.read_bytes())}
        return await self.client.post("/api/analyze", files=files, data=fields)

    async def story(self, path: Path, **fields: str) -> httpx.Response:
        files = [("files", (path.name, path.read_bytes()))]
        return await self.client.post("/analyze/", files=files, data=fields)

    def prompts(self) -> list[str]:
        return [r.prompt for r in self.vision.requests]


@pytest.fixture
async def app(tiny_engine, settings, accounts, speech) -> AsyncIterator[App]:
    built = App(tiny_engine, settings, accounts, speech, "alice")
    yield built
    await built.client.aclose()


@pytest.fixture
async def app_without_speech(tiny_engine, settings, accounts) -> AsyncIterator[App]:
    built = App(tiny_engine, settings, accounts, None, "bob")
    yield built
    await built.client.aclose()


def spoken_words(transcript: dict) -> str:
    return " ".join(s["text"] for s in transcript["segments"])


async def test_analyze_transcribes_and_the_model_hears_the_speech(
    app: App, speech_video: SpeechVideo
) -> None:
    response = await app.analyze(speech_video.path, audio="transcribe", prompt="What happens?")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"result", "tokens_used", "remaining_tokens", "sampling", "transcript"}
    transcript = body["transcript"]
    assert transcript["skipped"] is None
    said = spoken_words(transcript)
    assert jiwer.wer(speech_video.reference, said) < WER_THRESHOLD
    for seg in transcript["segments"]:
        assert set(seg) == {"start_s", "end_s", "text"}
        assert 0 <= seg["start_s"] <= seg["end_s"] <= 15.5
    # Times fall where the sentences were placed (half a second, as the speech tests).
    first = transcript["segments"][0]
    assert abs(first["start_s"] - speech_video.placed[0].start_s) < 0.5
    # The model saw the user's prompt followed by the timed speech lines.
    (prompt,) = app.prompts()
    assert prompt.startswith("What happens?\n\nSpeech in the video")
    for seg in transcript["segments"]:
        assert f"[{seg['start_s']:.1f}-{seg['end_s']:.1f}] {seg['text']}" in prompt


async def test_audio_off_is_the_documented_response(app: App, speech_video: SpeechVideo) -> None:
    for fields in ({}, {"audio": "off"}):
        response = await app.analyze(speech_video.path, **fields)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"result", "tokens_used", "remaining_tokens", "sampling"}
    assert all("Speech in the video" not in p for p in app.prompts())


async def test_a_corrupt_audio_track_is_skipped_and_the_analysis_succeeds(
    app: App, speech_video: SpeechVideo, tmp_path: Path
) -> None:
    bad = corrupt_audio_packets(speech_video.path, tmp_path / "bad.mp4")
    response = await app.analyze(bad, audio="transcribe")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"]
    assert body["transcript"] == {
        "segments": [],
        "skipped": "audio skipped: the audio track is corrupt",
    }
    assert "Speech in the video" not in app.prompts()[0]


async def test_a_video_without_audio_is_skipped(app: App, tmp_path: Path) -> None:
    path, _ = make_speech_video(tmp_path / "mute.mp4", [], 2.0, audio="none")
    response = await app.analyze(path, audio="transcribe")
    assert response.status_code == 200, response.text
    assert response.json()["transcript"] == {
        "segments": [],
        "skipped": "audio skipped: the video has no audio track",
    }


async def test_an_image_ignores_audio_and_says_so(app: App, tmp_path: Path) -> None:
    image = make_image(tmp_path / "a.png", "png", 64, 48)
    response = await app.analyze(image, audio="transcribe")
    assert response.status_code == 200, response.text
    assert response.json()["transcript"] == {
        "segments": [],
        "skipped": "audio skipped: an image has no audio",
    }


async def test_transcribe_without_speech_on_the_server_is_400(
    app_without_speech: App, speech_video: SpeechVideo
) -> None:
    for send in (app_without_speech.analyze, app_without_speech.story):
        response = await send(speech_video.path, audio="transcribe")
        assert response.status_code == 400
        assert response.json() == {"detail": NOT_ENABLED}
    assert app_without_speech.vision.requests == []
    # audio=off still works there.
    response = await app_without_speech.analyze(speech_video.path, audio="off")
    assert response.status_code == 200


async def test_an_unknown_audio_value_is_400(app: App, speech_video: SpeechVideo) -> None:
    response = await app.analyze(speech_video.path, audio="subtitles")
    assert response.status_code == 400
    assert "audio must be one of 'off', 'transcribe'" in response.json()["detail"]


async def test_story_observation_hears_the_speech(app: App, speech_video: SpeechVideo) -> None:
    response = await app.story(speech_video.path, audio="transcribe", language="th")
    assert response.status_code == 200, response.text
    body = response.json()
    transcript = body["transcript"]
    assert transcript["skipped"] is None
    assert jiwer.wer(speech_video.reference, spoken_words(transcript)) < WER_THRESHOLD
    (observe,) = app.prompts()
    assert "Speech in the video" in observe
    assert transcript["segments"][0]["text"] in observe


async def test_story_without_audio_has_no_transcript_key(
    app: App, speech_video: SpeechVideo, tmp_path: Path
) -> None:
    response = await app.story(speech_video.path)
    assert response.status_code == 200, response.text
    assert "transcript" not in response.json()
    bad = corrupt_audio_packets(speech_video.path, tmp_path / "bad.mp4")
    response = await app.story(bad, audio="transcribe")
    assert response.status_code == 200, response.text
    assert response.json()["transcript"]["skipped"] == "audio skipped: the audio track is corrupt"


# -- /v1/chat/completions: the "audio" extension field ---------------------------------


def chat_body(path: Path, **extra: object) -> dict:
    url = f"data:video/mp4;base64,{base64.b64encode(path.read_bytes()).decode()}"
    content = [
        {"type": "video_url", "video_url": {"url": url}},
        {"type": "text", "text": "What is said?"},
    ]
    return {
        "model": "tiny-qwen2.5-vl",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 4,
        **extra,
    }


async def test_chat_transcribes_and_the_speech_follows_the_video(
    app: App, speech_video: SpeechVideo
) -> None:
    body = chat_body(speech_video.path, audio="transcribe")
    response = await app.client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    transcript = response.json()["transcript"]
    assert transcript["skipped"] is None
    assert jiwer.wer(speech_video.reference, spoken_words(transcript)) < WER_THRESHOLD
    (request,) = app.vision.requests
    (turn,) = request.conversation
    assert turn.parts[0] is MediaSlot.VIDEO
    assert turn.parts[1].startswith("Speech in the video")
    assert transcript["segments"][0]["text"] in turn.parts[1]
    assert turn.parts[2] == "What is said?"


async def test_chat_stream_carries_the_transcript_in_its_first_chunk(
    app: App, speech_video: SpeechVideo, tmp_path: Path
) -> None:
    bad = corrupt_audio_packets(speech_video.path, tmp_path / "bad.mp4")
    body = chat_body(bad, audio="transcribe", stream=True)
    response = await app.client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    events = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: {")
    ]
    assert events[0]["transcript"] == {
        "segments": [],
        "skipped": "audio skipped: the audio track is corrupt",
    }
    assert all("transcript" not in e for e in events[1:])


async def test_chat_without_audio_has_no_transcript_and_off_server_is_400(
    app: App, app_without_speech: App, speech_video: SpeechVideo
) -> None:
    response = await app.client.post("/v1/chat/completions", json=chat_body(speech_video.path))
    assert response.status_code == 200, response.text
    assert "transcript" not in response.json()
    assert all(
        isinstance(p, MediaSlot) or "Speech" not in p
        for p in app.vision.requests[0].conversation[0].parts
    )
    body = chat_body(speech_video.path, audio="transcribe")
    response = await app_without_speech.client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == NOT_ENABLED
    assert response.json()["error"]["param"] == "audio"
