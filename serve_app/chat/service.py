"""``POST /v1/chat/completions`` and ``GET /v1/models``: the use case.

Order of work, as for ``POST /api/analyze``: check the parameters, read and probe
every medium (no credits yet), then charge (``Idempotency-Key`` honoured), run the
model graph, record the response. A failure, a timeout or a client going away
releases the credits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from serve_app.accounts.charging import charge
from serve_app.accounts.context import AccountsContext
from serve_app.accounts.idempotency import fingerprint
from serve_app.accounts.users import User
from serve_app.chat.audio import ChatAudio, check_chat_audio
from serve_app.chat.checks import CheckedChat, check_chat
from serve_app.chat.media import MediaSource, load_frame, load_media
from serve_app.chat.protocol import (
    AssistantMessage,
    Billing,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ImageURLPart,
    ModelCard,
    ModelList,
    SampledMedia,
    SpeechTranscript,
    Usage,
    VideoFramesPart,
)
from serve_app.chat.settings import ChatConfig, ChatSettings
from serve_app.chat.streams import merge_streams
from serve_app.engines.backend import ModelBackend
from serve_app.engines.base import GenerationDelta, GenerationRequest
from serve_app.engines.profile import ModelProfile
from serve_app.errors import ServeAppError
from serve_app.media.frames import MediaKind
from serve_app.media.limits import MediaLimits
from serve_app.net.fetch import FetchPolicy, SafeHttp
from serve_app.net.netguard import parse_networks
from serve_app.pipeline.protocol import (
    ChatAnswer,
    ChatEvent,
    ChatJob,
    ChatMedia,
    ChatStream,
    Pipeline,
    PromptContext,
    SampledVideo,
)
from serve_app.speech.backend import SpeechBackend

ENDPOINT = "POST /v1/chat/completions"
#: Credits are reserved under this reason in the ledger.
REASON = "chat"


@dataclass(frozen=True)
class ChatReply:
    """A response body; ``replayed`` for a stored ``Idempotency-Key`` response."""

    body: dict[str, Any]
    replayed: bool = False


def fetcher_for(chat: ChatSettings, media: MediaLimits) -> SafeHttp:
    """The SSRF-guarded client for image and video URLs under ``chat.fetch``."""
    fetch = chat.fetch
    policy = FetchPolicy(
        max_bytes=min(fetch.max_bytes, max(media.max_image_bytes, media.max_video_bytes)),
        connect_timeout_s=fetch.connect_timeout_s,
        read_timeout_s=fetch.read_timeout_s,
        total_timeout_s=fetch.total_timeout_s,
        max_redirects=fetch.max_redirects,
    )
    return SafeHttp(policy, allowed=parse_networks(fetch.allow_networks))


#: What ``/v1/models`` says each model takes (an extension of OpenAI's model object).
VISION_MODALITIES = ("text", "image", "video")
TEXT_MODALITIES = ("text",)


class ChatCompletions:
    """The ``/v1`` use case over a :class:`Pipeline` (Serve handles or in-process).

    ``text_models`` are text-only models served beside the pipeline's vision models
    (the configured story model): they answer conversations without media.
    ``speech`` serves the ``audio: "transcribe"`` extension (without it: 400).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        accounts: AccountsContext,
        config: ChatConfig,
        http: SafeHttp | None = None,
        text_models: Sequence[tuple[ModelProfile, ModelBackend]] = (),
        speech: SpeechBackend | None = None,
    ) -> None:
        self._pipeline = pipeline
        vision = set(pipeline.model_names)
        #: A text model named like a vision model is reachable only as the vision model.
        self._text = {p.name: (p, b) for p, b in text_models if p.name not in vision}
        self._profiles = {name: pipeline.profile(name) for name in pipeline.model_names}
        self._profiles.update({name: profile for name, (profile, _) in self._text.items()})
        self._accounts = accounts
        self._config = config
        self._speech = speech
        self._source = MediaSource(
            http=http or fetcher_for(config.chat, config.media),
            limits=config.media,
            spool_dir=config.spool_dir,
            inline_bytes=config.inline_media_bytes,
        )
        self._created = int(time.time())

    def models(self) -> ModelList:
        """Every model ``/v1/chat/completions`` takes, with the inputs each accepts."""
        cards = [
            ModelCard(
                id=name,
                created=self._created,
                modalities=list(VISION_MODALITIES if profile.multimodal else TEXT_MODALITIES),
            )
            for name, profile in self._profiles.items()
        ]
        return ModelList(data=cards)

    def _answer(self, job: ChatJob, context: PromptContext | None = None) -> Awaitable[ChatAnswer]:
        text = self._text.get(job.model)
        if text is None:
            return self._pipeline.chat(job, context)
        return _text_answer(text[1], job)

    def _answer_stream(self, job: ChatJob, context: PromptContext | None = None) -> ChatStream:
        text = self._text.get(job.model)
        if text is None:
            return self._pipeline.chat_stream(job, context)
        return _text_stream(text[1], job)

    async def complete(
        self,
        user: User,
        request: ChatCompletionRequest,
        *,
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> ChatReply:
        """A whole answer (``n`` choices), charged once per choice."""
        checked = check_chat(self._profiles, request, self._config.chat)
        mode = check_chat_audio(request.audio, self._speech)
        with contextlib.ExitStack() as cleanup:
            job = await self._job(checked, request_id, cleanup)
            async with self._charge(user, request, checked, idempotency_key) as bill:
                if bill.replay is not None:
                    return ChatReply(bill.replay.body, replayed=True)
                audio = ChatAudio(self._speech, job, mode, request_id)
                cleanup.callback(audio.close)
                with self._accounts.in_flight.track():
                    answers = await asyncio.gather(
                        *(self._answer(_nth(job, i), audio.context) for i in range(checked.n))
                    )
                completion = _completion(_completion_id(request_id), checked.model, answers)
                completion.billing = Billing(
                    credits_charged=bill.cost, credits_remaining=bill.remaining
                )
                completion.transcript = await audio.transcript()
                body = completion_body(completion)
                bill.record(body)
        return ChatReply(body)

    async def stream(
        self,
        user: User,
        request: ChatCompletionRequest,
        *,
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> AsyncGenerator[str, None]:
        """Server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``.

        Everything that can refuse the request (checks, media, credits, the first
        model output) happens before the first event, so callers can await the first
        item and still answer with an HTTP error status.
        """
        checked = check_chat(self._profiles, request, self._config.chat)
        mode = check_chat_audio(request.audio, self._speech)
        usage_wanted = bool(request.stream_options and request.stream_options.include_usage)
        with contextlib.ExitStack() as cleanup:
            job = await self._job(checked, request_id, cleanup)
            try:
                async with self._charge(user, request, checked, idempotency_key) as bill:
                    if bill.replay is not None:
                        for event in replay_events(bill.replay.body, usage_wanted):
                            yield event
                        return
                    audio = ChatAudio(self._speech, job, mode, request_id)
                    cleanup.callback(audio.close)
                    with self._accounts.in_flight.track():
                        writer = _StreamWriter(_completion_id(request_id), checked.model)
                        events = self._events(job, checked.n, writer, usage_wanted, audio)
                        async with contextlib.aclosing(events):
                            async for event in events:
                                yield event
                    writer.billing = Billing(
                        credits_charged=bill.cost, credits_remaining=bill.remaining
                    )
                    bill.record(completion_body(writer.completion()))
            except _StreamBroken:
                return

    async def _events(
        self, job: ChatJob, n: int, writer: _StreamWriter, usage_wanted: bool, audio: ChatAudio
    ) -> AsyncGenerator[str, None]:
        """Chunks of ``n`` choices, each ``index``-ed, as their models produce them.

        Videos' sampling reports (they come first) and the transcript go into the first
        chunk; an error before it is raised (the client still gets a status), after it
        is an event.
        """
        streams = [self._answer_stream(_nth(job, i), audio.context) for i in range(n)]
        events = merge_streams(streams) if n > 1 else _tagged(streams[0])
        started = False
        try:
            while True:
                try:
                    index, event = await anext(events)
                except StopAsyncIteration:
                    break
                except ServeAppError as exc:
                    if not started:
                        raise
                    yield sse(_stream_error(exc))
                    raise _StreamBroken from exc
                if isinstance(event, SampledVideo):
                    writer.add_video(index, event)
                    continue
                if not started:
                    writer.transcript = await audio.transcript()
                    yield writer.start(n)
                    started = True
                chunk = writer.add(index, event)
                if chunk is not None:
                    yield chunk
            if not started:
                writer.transcript = await audio.transcript()
                yield writer.start(n)
            if usage_wanted:
                yield writer.usage_chunk()
            yield "data: [DONE]\n\n"
        finally:
            await events.aclose()

    async def _job(
        self, checked: CheckedChat, request_id: str, cleanup: contextlib.ExitStack
    ) -> ChatJob:
        """Read and probe every medium in parallel (worker threads)."""
        items = await asyncio.gather(
            *(
                asyncio.to_thread(self._medium, where, part, checked, cleanup)
                for where, part in checked.media
            )
        )
        return ChatJob(
            model=checked.model,
            conversation=checked.conversation,
            media=tuple(items),
            sampling=checked.sampling,
            request_id=request_id,
        )

    def _medium(
        self, where: str, part: Any, checked: CheckedChat, cleanup: contextlib.ExitStack
    ) -> ChatMedia:
        if isinstance(part, VideoFramesPart):
            frames = tuple(
                load_frame(url, f"{where}.video[{k}]", self._source)
                for k, url in enumerate(part.video)
            )
            fps = min(part.fps or self._config.chat.default_fps, 240.0)
            return ChatMedia(MediaKind.VIDEO, frames, frames_fps=fps, max_pixels=checked.max_pixels)
        if isinstance(part, ImageURLPart):
            loaded = load_media(
                part.image_url.url, MediaKind.IMAGE, f"{where}.image_url", self._source, cleanup
            )
            return ChatMedia(
                MediaKind.IMAGE, loaded.ref, info=loaded.info, max_pixels=checked.max_pixels
            )
        loaded = load_media(
            part.video_url.url, MediaKind.VIDEO, f"{where}.video_url", self._source, cleanup
        )
        return ChatMedia(
            MediaKind.VIDEO,
            loaded.ref,
            spec=checked.spec,
            info=loaded.info,
            max_pixels=checked.max_pixels,
        )

    def _charge(
        self,
        user: User,
        request: ChatCompletionRequest,
        checked: CheckedChat,
        idempotency_key: str | None,
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        cost = self._config.chat.cost
        per_choice = self._accounts.settings.analysis_cost if cost is None else cost
        request_fp = ""
        if idempotency_key is not None:
            body = request.model_dump_json(by_alias=True, exclude_none=True)
            request_fp = fingerprint(ENDPOINT, body)
        return charge(
            self._accounts,
            user,
            cost=per_choice * checked.n,
            reason=REASON,
            idempotency_key=idempotency_key,
            fingerprint=request_fp,
        )


class _StreamBroken(Exception):
    """The model failed mid-stream; the client got an error event (credits released)."""


class _StreamWriter:
    """Turns pipeline events into chunks and remembers the whole answer of each choice."""

    def __init__(self, completion_id: str, model: str) -> None:
        self._id = completion_id
        self._model = model
        self._created = int(time.time())
        self._text: dict[int, list[str]] = {}
        self._videos: list[SampledMedia] = []
        self._last: dict[int, GenerationDelta] = {}
        self.billing: Billing | None = None
        self.transcript: SpeechTranscript | None = None

    def _chunk(self, **fields: Any) -> str:
        chunk = ChatCompletionChunk(id=self._id, created=self._created, model=self._model, **fields)
        return sse(chunk.model_dump(mode="json", exclude_none=True))

    def add_video(self, index: int, video: SampledVideo) -> None:
        if index == 0:  # every choice samples the same media
            self._videos.append(_sampled(video))

    def start(self, n: int) -> str:
        """The first chunk: each choice's role, and what was sampled from the videos."""
        for i in range(n):
            self._text.setdefault(i, [])
        choices = [
            ChunkChoice(index=i, delta=Delta(role="assistant", content="")) for i in range(n)
        ]
        return self._chunk(
            choices=choices, sampled_media=self._videos or None, transcript=self.transcript
        )

    def add(self, index: int, event: GenerationDelta | None) -> str | None:
        """A text chunk, or choice ``index``'s last chunk when its stream ended (``None``)."""
        if event is None:
            reason = self._finish_reason(index)
            return self._chunk(
                choices=[ChunkChoice(index=index, delta=Delta(), finish_reason=reason)]
            )
        if event.finish_reason is not None:
            self._last[index] = event
        if not event.text:
            return None
        self._text.setdefault(index, []).append(event.text)
        return self._chunk(choices=[ChunkChoice(index=index, delta=Delta(content=event.text))])

    def _finish_reason(self, index: int) -> str:
        last = self._last.get(index)
        return (last.finish_reason if last else None) or "stop"

    def _usage(self) -> Usage:
        lasts = list(self._last.values())
        prompt = lasts[0].input_tokens if lasts else 0
        completion = sum(last.output_tokens for last in lasts)
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    def usage_chunk(self) -> str:
        return self._chunk(choices=[], usage=self._usage())

    def completion(self) -> ChatCompletion:
        choices = [
            Choice(
                index=i,
                message=AssistantMessage(content="".join(text)),
                finish_reason=self._finish_reason(i),
            )
            for i, text in sorted(self._text.items())
        ]
        return ChatCompletion(
            id=self._id,
            created=self._created,
            model=self._model,
            choices=choices,
            usage=self._usage(),
            sampled_media=self._videos,
            billing=self.billing,
            transcript=self.transcript,
        )


async def _tagged(stream: ChatStream) -> AsyncGenerator[tuple[int, ChatEvent | None], None]:
    """One stream as :func:`merge_streams` gives several (index 0, ``None`` at its end)."""
    try:
        async for event in stream:
            yield 0, event
        yield 0, None
    finally:
        await stream.aclose()


def completion_body(completion: ChatCompletion) -> dict[str, Any]:
    """The JSON body; ``transcript`` only when the request asked for the audio."""
    exclude = {"transcript"} if completion.transcript is None else None
    return completion.model_dump(mode="json", exclude=exclude)


def sse(data: dict[str, Any]) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def replay_events(body: dict[str, Any], usage_wanted: bool) -> list[str]:
    """A stored completion, streamed again as chunks (a repeated Idempotency-Key)."""
    completion = ChatCompletion.model_validate(body)
    base = {"id": completion.id, "created": completion.created, "model": completion.model}
    events = []
    for choice in completion.choices:
        delta = Delta(role="assistant", content=choice.message.content)
        chunk = ChatCompletionChunk(
            **base,
            choices=[ChunkChoice(index=choice.index, delta=delta)],
            sampled_media=completion.sampled_media or None,
            transcript=completion.transcript,
        )
        events.append(sse(chunk.model_dump(mode="json", exclude_none=True)))
        done = ChunkChoice(index=choice.index, delta=Delta(), finish_reason=choice.finish_reason)
        events.append(
            sse(
                ChatCompletionChunk(**base, choices=[done]).model_dump(
                    mode="json", exclude_none=True
                )
            )
        )
    if usage_wanted:
        usage = ChatCompletionChunk(**base, choices=[], usage=completion.usage)
        events.append(sse(usage.model_dump(mode="json", exclude_none=True)))
    events.append("data: [DONE]\n\n")
    return events


def _text_request(job: ChatJob) -> GenerationRequest:
    return GenerationRequest(
        prompt="", conversation=job.conversation, sampling=job.sampling, request_id=job.request_id
    )


async def _text_answer(backend: ModelBackend, job: ChatJob) -> ChatAnswer:
    """A text-only model's answer (its backend has no media and no streaming)."""
    return ChatAnswer(await backend.generate(_text_request(job)))


async def _text_stream(backend: ModelBackend, job: ChatJob) -> ChatStream:
    """A text-only model's whole answer as one delta."""
    result = await backend.generate(_text_request(job))
    yield GenerationDelta(
        text=result.text,
        finish_reason=result.finish_reason,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
    )


def _stream_error(exc: ServeAppError) -> dict[str, Any]:
    return {"error": {"message": exc.detail, "type": "server_error", "param": None, "code": None}}


def _completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id or uuid.uuid4().hex}"


def _nth(job: ChatJob, i: int) -> ChatJob:
    """The ``i``-th choice's job: its own seed, so sampled choices differ."""
    if i == 0 or job.sampling.seed is None:
        return job
    return replace(job, sampling=replace(job.sampling, seed=job.sampling.seed + i))


def _sampled(video: SampledVideo) -> SampledMedia:
    return SampledMedia(
        frame_indices=list(video.frame_indices),
        timestamps=list(video.timestamps),
        fps=video.fps,
        source_fps=video.source_fps,
        width=video.width,
        height=video.height,
    )


def _completion(completion_id: str, model: str, answers: list[ChatAnswer]) -> ChatCompletion:
    choices = [
        Choice(
            index=i,
            message=AssistantMessage(content=a.generation.text),
            finish_reason=a.generation.finish_reason,
        )
        for i, a in enumerate(answers)
    ]
    prompt = answers[0].generation.input_tokens
    completion = sum(a.generation.output_tokens for a in answers)
    return ChatCompletion(
        id=completion_id,
        created=int(time.time()),
        model=model,
        choices=choices,
        usage=Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
        sampled_media=[_sampled(v) for v in answers[0].videos],
    )
