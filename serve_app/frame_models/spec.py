"""How a job names one of its per-frame models (:class:`ModelSpec`)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

InferenceType = Literal["object-detection", "vlm"]
#: Model ids double as keys of the results JSON: keep them plain.
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$"
_MAX_PARAMS_CHARS = 4000


class ModelSpec(BaseModel):
    """One model of a job.

    Attributes:
        model_version: which configured version; ``None``: the only (or highest) one.
        inference_params: per-model options, e.g. ``{"confidence": 0.5}`` for a
            detector or ``{"prompt": "..."}`` for a ``vlm`` captioner.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str = Field(pattern=MODEL_ID_PATTERN)
    model_version: str | None = Field(default=None, max_length=50)
    inference_type: InferenceType = "object-detection"
    inference_params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("inference_params")
    @classmethod
    def _small_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str)) > _MAX_PARAMS_CHARS:
            raise ValueError(f"inference_params must stay under {_MAX_PARAMS_CHARS} characters")
        return value
