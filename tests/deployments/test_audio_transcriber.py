"""AudioTranscriber: the class on its own, then on Ray Serve behind ``HandleSpeech``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jiwer
import pytest

from serve_app.deployments.audio_transcriber import AudioTranscriber
from serve_app.media.audio import AudioDecodeFailed
from serve_app.speech.backend import transcribe_or_skip
from serve_app.speech.factory import SpeechEngineFactory
from serve_app.speech.settings import SpeechSettings
from tests.support.speech_media import SpeechVideo, corrupt_audio_packets, make_speech_video

APP = "speech_graph"
POCKETSPHINX = SpeechSettings(backend="pocketsphinx", chunk_s=10)


async def test_the_class_transcribes_bytes_in_a_clip(speech_video: SpeechVideo) -> None:
    transcriber = await AudioTranscriber.create(SpeechEngineFactory(POCKETSPHINX))
    assert await transcriber.ready()
    first = speech_video.placed[0]
    transcript = await transcriber.transcribe(speech_video.path.read_bytes(), 0.0, 4.5)
    assert transcript.audio_s == pytest.approx(4.5, abs=0.01)
    assert transcript.segments[0].start_s == pytest.approx(first.start_s, abs=0.5)
    await transcriber.shutdown()
    assert not await transcriber.ready()


@pytest.fixture(scope="module")
def speech_handle(ray_serve: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from ray import serve

    from serve_app.deployments.options import deployment

    data_dir = tmp_path_factory.mktemp("speech-graph")
    app = deployment(
        AudioTranscriber, "AudioTranscriber", {"ray_actor_options": {"num_cpus": 0.1}}
    ).bind(SpeechEngineFactory(POCKETSPHINX, data_dir), data_dir=data_dir)
    handle = serve.run(app, name=APP, route_prefix=None)
    try:
        yield handle
    finally:
        serve.delete(APP)


@pytest.mark.ray
@pytest.mark.slow
async def test_the_deployment_serves_the_speech_backend_contract(
    speech_handle: object, speech_video: SpeechVideo, tmp_path: Path
) -> None:
    from serve_app.deployments.handles import HandleSpeech

    speech = HandleSpeech(speech_handle)  # type: ignore[arg-type]
    assert await speech.ready()
    # A file path is shipped through the object store and lands in the replica's spool.
    transcript = await speech.transcribe(speech_video.path)
    assert jiwer.wer(speech_video.reference, transcript.text) < 0.6
    assert [round(s.start_s) for s in transcript.segments][:1] == [1]
    # The typed error crosses Ray as itself; the skip helper turns it into a note.
    bad = corrupt_audio_packets(speech_video.path, tmp_path / "bad.mp4")
    with pytest.raises(AudioDecodeFailed, match="corrupt"):
        await speech.transcribe(bad)
    assert (
        await transcribe_or_skip(speech, bad)
    ).note == "audio skipped: the audio track is corrupt"
    none, _ = make_speech_video(tmp_path / "none.mp4", [], 2.0, audio="none")
    assert (await transcribe_or_skip(speech, none)).note == (
        "audio skipped: the video has no audio track"
    )
