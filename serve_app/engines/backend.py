"""One served model as its callers see it, wherever it runs.

Orchestrators (the story pipeline, the job runner's frame models, the describe
pipeline) are written once over :class:`ModelBackend`. In process they get
:class:`EngineBackend`; under Ray Serve, the handle adapters of
:mod:`serve_app.deployments.handles`, the only code that calls ``.remote()``.
"""

from __future__ import annotations

from typing import Protocol

from serve_app.engines.base import Engine, GenerationRequest, GenerationResult
from serve_app.errors import BackendUnavailable


class ModelBackend(Protocol):
    """One served model: answers ready generation requests and says if it is healthy."""

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Run one request (images/video already decoded and resized).

        Raises the engine contract's errors (:class:`BackendUnavailable`, ...).
        """
        ...

    async def ready(self) -> bool:
        """``True`` when the model can serve now; never raises."""
        ...


class EngineBackend:
    """:class:`ModelBackend` over an engine in this process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        return await self.engine.generate(request)

    async def ready(self) -> bool:
        try:
            await self.engine.check_health()
        except BackendUnavailable:
            return False
        return True
