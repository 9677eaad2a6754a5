"""The only code that calls ``.remote()``: the orchestrators' backends over Serve handles.

Each adapter implements a backend protocol of the domain code (for example
:class:`~serve_app.pipeline.backends.VisionBackend`) and turns Ray's wrapped
exceptions back into the domain errors they carry (:func:`domain_error`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, RayServeException
from ray.serve.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator

from serve_app.deployments.media_transfer import ship
from serve_app.engines.base import GenerationRequest, GenerationResult
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable, ServeAppError
from serve_app.frame_models.resolved import DetectorModel
from serve_app.frame_models.results import FrameResult
from serve_app.media.audio import AudioChunk
from serve_app.media.detect import MediaSource
from serve_app.pipeline.protocol import (
    ChatAnswer,
    ChatEvent,
    ChatJob,
    ChatStream,
    DescribeJob,
    PromptContext,
)
from serve_app.speech.base import Segment, Transcript

READINESS_TIMEOUT_S = 3.0


class DispatchCounter:
    """Requests this process has in flight, per deployment name."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    @contextmanager
    def track(self, deployment: str) -> Iterator[None]:
        self._counts[deployment] += 1
        try:
            yield
        finally:
            self._counts[deployment] -= 1

    def get(self, deployment: str) -> int:
        return self._counts[deployment]


class HandleModel:
    """:class:`~serve_app.engines.backend.ModelBackend` over a model deployment."""

    def __init__(self, model: DeploymentHandle, dispatched: DispatchCounter | None = None) -> None:
        self._model = model
        self._dispatched = dispatched or DispatchCounter()

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        try:
            with self._dispatched.track(self._model.deployment_name):
                result: GenerationResult = await self._model.generate.remote(request)
        except Exception as exc:
            raise domain_error(exc) from None
        return result

    async def ready(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._model.ready.remote(), READINESS_TIMEOUT_S))
        except Exception:
            return False


def job_runner_waker(runner: DeploymentHandle) -> Callable[[], object]:
    """Pokes the ``JobRunner`` after a submit (fire and forget; it polls anyway)."""
    return lambda: runner.wake.remote()


class HandleVision(HandleModel):
    """:class:`~serve_app.pipeline.backends.VisionBackend`: FrameExtractor → model.

    The model is called once the extractor's frames exist (:func:`produced`), with
    their ``ObjectRef``: the frame array moves replica-to-replica through the object
    store, never via the ingress, and the model's handle counts the request as
    ongoing for the model's share only, not while its frames are decoded (what the
    deployments autoscale on, and what ``/api/stats`` shows per deployment).
    A media file (a path on the ingress's node) is shipped through the object store
    first (:mod:`~serve_app.deployments.media_transfer`): no replica reads another
    node's disk.
    """

    def __init__(
        self,
        frame_extractor: DeploymentHandle,
        model: DeploymentHandle,
        dispatched: DispatchCounter | None = None,
    ) -> None:
        super().__init__(model, dispatched)
        self._frames = frame_extractor

    async def describe(
        self, job: DescribeJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatAnswer:
        """``context`` (started with the request, so it ran beside the decoding) is awaited
        once the frames exist; they stay in the object store meanwhile."""
        try:
            media = await ship(job.media)
            with self._dispatched.track(self._frames.deployment_name):
                frames = await produced(
                    self._frames.extract.remote(
                        media, job.spec, profile, job.request_id, job.media_info
                    )
                )
            if context is not None:  # started with the request: it ran beside the decoding
                job = job.with_context(await context)
            # The model needs the frames, not the file: inline media (up to
            # inline_media_bytes) would otherwise be copied to its replica too.
            prompt_only = dataclasses.replace(job, media=b"")
            with self._dispatched.track(self._model.deployment_name):
                answer: ChatAnswer = await self._model.describe.remote(frames, prompt_only)
        except Exception as exc:
            raise domain_error(exc) from None
        return answer

    async def chat(
        self, job: ChatJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatAnswer:
        """Each medium on a FrameExtractor replica; the frames go to the model by reference."""
        try:
            frames = await self._extract_chat_media(job, profile)
            job = await _with_context(job, context)
            with self._dispatched.track(self._model.deployment_name):
                answer: ChatAnswer = await self._model.chat.remote(job.without_media(), *frames)
        except Exception as exc:
            raise domain_error(exc) from None
        return answer

    async def chat_stream(
        self, job: ChatJob, profile: ModelProfile, context: PromptContext | None = None
    ) -> ChatStream:
        """The model's streaming handle; closing this iterator cancels the Serve call.

        Serve turns the cancel into a ``CancelledError`` inside the model replica's
        generator, which closes the engine's stream and aborts the generation.
        """
        try:
            frames = await self._extract_chat_media(job, profile)
            job = await _with_context(job, context)
        except Exception as exc:
            raise domain_error(exc) from None
        stream: DeploymentResponseGenerator[ChatEvent] = self._model.options(
            stream=True
        ).chat_stream.remote(job.without_media(), *frames)  # type: ignore[assignment]
        finished = False
        try:
            with self._dispatched.track(self._model.deployment_name):
                async for event in stream:
                    yield event
            finished = True
        except Exception as exc:
            raise domain_error(exc) from None
        finally:
            if not finished:
                stream.cancel()

    async def _extract_chat_media(self, job: ChatJob, profile: ModelProfile) -> list[ray.ObjectRef]:
        """One extractor call per medium, in parallel; their results once produced.

        A file travels apart from its :class:`ChatMedia` (as a top-level argument Ray
        resolves to the array on the extractor's node).
        """
        calls: list[Any] = []  # DeploymentResponses (not streams)
        for item in job.media:
            if isinstance(item.source, Path):
                shipped = await ship(item.source)
                bare = dataclasses.replace(item, source=b"")
                calls.append(
                    self._frames.extract_chat_media.remote(bare, profile, job.request_id, shipped)
                )
            else:
                calls.append(self._frames.extract_chat_media.remote(item, profile, job.request_id))
        with self._dispatched.track(self._frames.deployment_name):
            return list(await asyncio.gather(*(produced(call) for call in calls)))


async def produced(
    response: DeploymentResponse[Any] | DeploymentResponseGenerator[Any],
) -> ray.ObjectRef:
    """``response``'s result once its replica has made it, as a reference.

    Not fetched: the value stays in the object store of the replica's node (an error
    too, raised where the reference is resolved). A later call that takes the
    reference as a top-level argument gets the value on its own replica. Cancelling
    the wait cancels the call.
    """
    if not isinstance(response, DeploymentResponse):
        raise TypeError("a streaming call has no single result to pass on")
    try:
        ref: ray.ObjectRef = await response._to_object_ref()
        return await ref._ready()
    except asyncio.CancelledError:
        response.cancel()
        raise


async def _with_context(job: ChatJob, context: PromptContext | None) -> ChatJob:
    """``job`` with ``context``'s text (started with the request, beside the extraction)."""
    return job if context is None else job.with_context(await context)


def domain_error(exc: BaseException) -> BaseException:
    """The :class:`ServeAppError` behind ``exc``, or a retryable error for Ray faults.

    Exceptions raised inside a replica reach the caller wrapped in ``RayTaskError``
    (possibly several times, once per hop). Anything that is not a domain error is
    returned unchanged so the API layer reports it as a 500.
    """
    seen = 0
    current: BaseException = exc
    while isinstance(current, RayTaskError) and seen < 8:
        cause = current.cause
        if cause is None or cause is current:
            break
        current = cause
        seen += 1
    if isinstance(current, ServeAppError):
        return _plain(current)
    if isinstance(current, BackPressureError):
        retry_after = getattr(current, "retry_after_s", None)
        retry = max(1, math.ceil(retry_after)) if retry_after else 2
        return BackendUnavailable("the service is at capacity; retry shortly", retry_after_s=retry)
    if isinstance(current, (RayActorError, DeploymentUnavailableError)) or _replica_died(current):
        return BackendUnavailable("a model replica stopped; retry shortly", retry_after_s=5)
    return exc


def _replica_died(exc: BaseException) -> bool:
    """A Serve error caused by a dead actor.

    Ray Serve raises ``RayServeException`` (``__cause__``: ``ActorDiedError``) when a
    replica whose response was passed on as an argument died before answering, e.g. a
    FrameExtractor replica killed while its frames were on the way to the model.
    """
    cause = exc.__cause__
    return isinstance(exc, RayServeException) and isinstance(cause, RayActorError)


def _plain(exc: ServeAppError) -> ServeAppError:
    """Rebuild a domain error without Ray's dual-class wrapper around it."""
    for cls in type(exc).__mro__:
        if issubclass(cls, ServeAppError) and not issubclass(cls, RayTaskError):
            plain = cls.__new__(cls)
            plain.__dict__.update(exc.__dict__)
            Exception.__init__(plain, exc.detail)
            return plain
    return exc


class HandleDetector:
    """:class:`~serve_app.frame_models.backends.DetectorBackend` over the ``Detector``."""

    def __init__(
        self, detector: DeploymentHandle, dispatched: DispatchCounter | None = None
    ) -> None:
        self._detector = detector
        self._dispatched = dispatched or DispatchCounter()

    async def detect(
        self, model: DetectorModel, frames: np.ndarray, original_size: tuple[int, int]
    ) -> list[FrameResult]:
        try:
            with self._dispatched.track(self._detector.deployment_name):
                detected: list[FrameResult] = await self._detector.detect.remote(
                    model, frames, original_size
                )
        except Exception as exc:
            raise domain_error(exc) from None
        return detected


class HandleSpeech:
    """:class:`~serve_app.speech.backend.SpeechBackend` over the ``AudioTranscriber``.

    A media file is shipped through the object store first, as for the extractor.
    """

    def __init__(
        self, transcriber: DeploymentHandle, dispatched: DispatchCounter | None = None
    ) -> None:
        self._transcriber = transcriber
        self._dispatched = dispatched or DispatchCounter()

    async def transcribe(
        self,
        media: MediaSource,
        start_s: float = 0.0,
        end_s: float | None = None,
        request_id: str = "",
    ) -> Transcript:
        try:
            shipped = await ship(Path(media) if isinstance(media, str) else media)
            with self._dispatched.track(self._transcriber.deployment_name):
                transcript: Transcript = await self._transcriber.transcribe.remote(
                    shipped, start_s, end_s, request_id
                )
        except Exception as exc:
            raise domain_error(exc) from None
        return transcript

    async def transcribe_audio(self, chunk: AudioChunk, request_id: str = "") -> list[Segment]:
        try:
            with self._dispatched.track(self._transcriber.deployment_name):
                segments: list[Segment] = await self._transcriber.transcribe_audio.remote(
                    chunk, request_id
                )
        except Exception as exc:
            raise domain_error(exc) from None
        return segments

    async def ready(self) -> bool:
        try:
            return bool(
                await asyncio.wait_for(self._transcriber.ready.remote(), READINESS_TIMEOUT_S)
            )
        except Exception:
            return False
