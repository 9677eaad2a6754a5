"""Long-video summaries that hear the video: each chunk's speech (pocketsphinx on
espeak-ng sentences placed at known times) goes into its caption prompt, its result and
the speech subtitles; chapters and summary read it; a broken or missing audio track
never fails the job."""

from __future__ import annotations

import json

import jiwer
import pytest
import srt

from serve_app.errors import InvalidRequest
from serve_app.jobs.store.tables import JobStatus
from serve_app.speech.backend import EngineSpeech
from serve_app.speech.pocketsphinx_engine import PocketsphinxEngine
from serve_app.summaries.exports import render
from serve_app.summaries.spec import SummaryRequest
from tests.jobs.conftest import make_user
from tests.summaries.support import Witness, executor, signed_upload, summaries, summary_context
from tests.support.speech_media import corrupt_audio_packets, make_speech_video

#: The word error rate pocketsphinx reaches on these sentences (0.54 measured over the
#: whole video in tests/speech); chunk cuts between sentences cost nothing more.
MAX_WER = 0.6


@pytest.fixture(scope="module")
async def pocketsphinx():
    engine = PocketsphinxEngine()
    await engine.start()
    yield EngineSpeech(engine)
    await engine.shutdown()


async def summarise(accounts, tmp_path, tiny_engine, video, speech, **body):
    profile, engine = tiny_engine
    ctx = summary_context(accounts, tmp_path / "data", profile)
    user = make_user(accounts, admin=True)
    request = SummaryRequest(input_url=signed_upload(ctx, user, video), **body)
    await summaries(ctx, speech=True).submit(user, request)
    job = ctx.store.claim("test", ctx.jobs.lease_s)
    assert job is not None
    witness = Witness(engine)
    assert await executor(ctx, profile, witness, speech).execute(job) is JobStatus.SUCCEEDED
    document = json.loads(ctx.blobs.read_bytes(ctx.store.get(job.id).result_key))
    return document, witness


async def test_each_chunk_hears_its_own_sentence(
    accounts, tmp_path, tiny_engine, speech_video, pocketsphinx
):
    document, witness = await summarise(
        accounts,
        tmp_path,
        tiny_engine,
        speech_video.path,
        pocketsphinx,
        chunk_s=5.0,
        frames_per_chunk=2,
    )
    chunks = document["chunks"]
    assert [(c["start_s"], c["end_s"]) for c in chunks] == [(0, 5), (5, 10), (10, 15)]
    for chunk, placed in zip(chunks, speech_video.placed, strict=True):
        segments = chunk["transcript"]
        assert segments and "audio_skipped" not in chunk
        # Heard where the sentence was placed, within half a second, inside its chunk.
        assert abs(segments[0]["start_s"] - placed.start_s) <= 0.5
        assert all(chunk["start_s"] <= s["start_s"] <= chunk["end_s"] for s in segments)
        prompt = witness.prompts[f"chunk-{chunk['index']}"]
        assert "Speech in this part" in prompt
        assert all(s["text"] in prompt for s in segments)
    heard = " ".join(s["text"] for c in chunks for s in c["transcript"])
    assert jiwer.wer(speech_video.reference, heard) < MAX_WER
    # The reduce step read the speech next to the captions.
    assert any('Speech: "' in prompt for prompt in witness.text_prompts)

    subtitles = list(srt.parse(render(document, "srt", track="speech").body.decode()))
    segments = [s for c in chunks for s in c["transcript"]]
    assert [cue.content for cue in subtitles] == [s["text"] for s in segments]
    assert subtitles[0].start.total_seconds() == segments[0]["start_s"]
    with pytest.raises(InvalidRequest, match="no translation variants"):
        render(document, "vtt", variant="bilingual", track="speech")


async def test_a_corrupt_audio_track_is_skipped_with_its_reason(
    accounts, tmp_path, tiny_engine, speech_video, pocketsphinx
):
    broken = corrupt_audio_packets(speech_video.path, tmp_path / "corrupt.mp4")
    document, _ = await summarise(
        accounts, tmp_path, tiny_engine, broken, pocketsphinx, chunk_s=7.5, frames_per_chunk=2
    )
    for chunk in document["chunks"]:
        assert chunk["caption"] and chunk["frame_indices"]  # the pictures still count
        assert chunk.get("audio_skipped") or chunk["transcript"] == []


async def test_no_audio_track_and_audio_off(accounts, tmp_path, tiny_engine, pocketsphinx):
    silent, _ = make_speech_video(tmp_path / "mute.mp4", [], 6.0, audio="none")
    document, witness = await summarise(
        accounts, tmp_path, tiny_engine, silent, pocketsphinx, chunk_s=3.0, frames_per_chunk=2
    )
    assert {c["audio_skipped"] for c in document["chunks"]} == {"the video has no audio track"}
    assert all("Speech in this part" not in p for p in witness.prompts.values())
    off, _ = await summarise(
        accounts,
        tmp_path,
        tiny_engine,
        silent,
        pocketsphinx,
        chunk_s=3.0,
        frames_per_chunk=2,
        audio="off",
    )
    assert all("transcript" not in c for c in off["chunks"])


async def test_transcribe_needs_speech_on_the_server(accounts, tmp_path, tiny_engine):
    profile, _ = tiny_engine
    ctx = summary_context(accounts, tmp_path / "data", profile)
    user = make_user(accounts, admin=True)
    request = SummaryRequest(input_url="https://example.com/v.mp4", audio="transcribe")
    with pytest.raises(InvalidRequest, match="speech recognition is not enabled"):
        await summaries(ctx).submit(user, request)
