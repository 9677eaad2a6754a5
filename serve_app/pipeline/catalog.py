"""The configured models of a pipeline, by public name, shared by every implementation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from serve_app.engines.profile import ModelProfile
from serve_app.errors import UnknownModel

Backend = TypeVar("Backend")


class ModelCatalog(Generic[Backend]):
    """Name → (profile, backend) with a default; ``backend`` is an engine or a handle."""

    def __init__(
        self, models: Mapping[str, tuple[ModelProfile, Backend]], default_model: str
    ) -> None:
        if default_model not in models:
            raise ValueError(f"default model {default_model!r} is not among the models")
        self._models = dict(models)
        self._default = default_model

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self._models)

    @property
    def default_model(self) -> str:
        return self._default

    def profile(self, name: str) -> ModelProfile:
        """The profile of model ``name``, or :class:`UnknownModel`."""
        return self.model(name)[0]

    def model(self, name: str) -> tuple[ModelProfile, Backend]:
        """The profile and backend serving ``name``, or :class:`UnknownModel`."""
        try:
            return self._models[name]
        except KeyError:
            raise UnknownModel(f"unknown model {name!r}") from None
