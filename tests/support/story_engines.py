"""Engine wrappers and doubles for Story API tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.errors import BackendUnavailable, ServeAppError


class RecordingEngine(Engine):
    """Wraps a real engine and records every request and every result it returns.

    Start and shutdown are not forwarded: the wrapped engine is shared by the session.
    """

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.requests: list[GenerationRequest] = []
        self.results: list[GenerationResult] = []

    async def start(self) -> None:
        pass

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        result = await self.inner.generate(request)
        self.results.append(result)
        return result

    async def check_health(self) -> None:
        await self.inner.check_health()

    async def shutdown(self) -> None:
        pass


class ScriptedEngine(Engine):
    """Answers every request with fixed ``texts`` in turn (the last one repeats).

    Stands in for a backend that answers with something the service must judge: a model
    that emits end-of-sequence at once or only white space (an OpenAI-compatible server
    or vLLM returns ``""`` then, where the transformers engine would raise), or one cut
    off at ``max_tokens`` (``finish_reason="length"``). ``delay_s`` makes calls overlap
    so tests can see how many run at once (``max_in_flight``); ``error`` is raised
    instead of answering (a backend that is down: ``BackendUnavailable``).
    """

    def __init__(
        self,
        texts: Sequence[str] = ("A calm story.",),
        finish_reason: str = "stop",
        delay_s: float = 0.0,
        error: ServeAppError | None = None,
    ) -> None:
        self.error = error
        self.texts = list(texts)
        self.finish_reason = finish_reason
        self.delay_s = delay_s
        self.requests: list[GenerationRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.healthy = True

    async def start(self) -> None:
        pass

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        if self.error is not None:
            raise self.error
        text = self.texts[min(len(self.requests), len(self.texts)) - 1]
        return GenerationResult(
            text=text, input_tokens=7, output_tokens=3, finish_reason=self.finish_reason
        )

    async def check_health(self) -> None:
        if not self.healthy:
            raise BackendUnavailable("scripted engine is down")

    async def shutdown(self) -> None:
        pass
