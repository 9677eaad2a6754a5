"""What every model deployment shares: the engine's lifecycle, batching and health.

Subclasses add their public methods and must define ``_generate_batched`` with
``@serve.batch`` themselves: Ray keeps one batch queue per decorated function per
process, so a queue defined here would be shared by every subclass's instances.
"""

from __future__ import annotations

from typing import Any

from serve_app.deployments.construct import AsyncConstructed
from serve_app.engines.base import GenerationRequest, GenerationResult
from serve_app.engines.chat import require_unconstrained
from serve_app.engines.factory import EngineFactory
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable, GenerationFailed


class EngineHost(AsyncConstructed):
    """Hosts one :class:`ModelProfile`'s engine inside a Ray Serve replica.

    Engines that gain from batching (transformers) get requests grouped by
    ``@serve.batch`` up to ``max_batch_size``; vLLM batches continuously itself.
    """

    _generate_batched: Any  # ``@serve.batch`` method of the subclass

    async def __init__(  # type: ignore[misc]  # Ray supports async constructors
        self,
        engine: EngineFactory,
        profile: ModelProfile,
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.01,
    ) -> None:
        self._profile = profile
        self._engine = engine()
        await self._engine.start()
        self._batching = self._engine.supports_batching and max_batch_size > 1
        batched: Any = self._generate_batched  # @serve.batch adds the setters
        batched.set_max_batch_size(max(1, max_batch_size))
        batched.set_batch_wait_timeout_s(batch_wait_timeout_s)

    async def _run(self, request: GenerationRequest) -> GenerationResult:
        """One request, batched with others where the engine gains from it.

        Either way an empty answer is a :class:`GenerationFailed`, as the engine
        contract promises for ``generate`` (``generate_batch`` leaves it to the caller).
        A ``response_format`` the engine cannot honour is refused here, before it can
        join (and fail) a batch of other callers' requests.
        """
        if not self._engine.constrains_output:
            require_unconstrained(request, self._profile.name)
        if not self._batching:
            return await self._engine.generate(request)
        result: GenerationResult = await self._generate_batched(request)
        if not result.text.strip():
            raise GenerationFailed(f"model {self._profile.name!r} returned no text")
        return result

    async def ready(self) -> bool:
        try:
            await self._engine.check_health()
        except BackendUnavailable:
            return False
        return True

    async def check_health(self) -> None:
        """Ray Serve's health probe: a failing engine gets the replica restarted."""
        await self._engine.check_health()

    async def shutdown(self) -> None:
        """Release the engine (Serve calls it on graceful shutdown; tests call it)."""
        await self._engine.shutdown()
