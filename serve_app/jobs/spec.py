"""What a client asks for: ``POST /videoinfer/`` bodies, and their models as stored JSON."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, field_validator

from serve_app.frame_models.spec import ModelSpec

#: Keys of the results JSON that are not model ids.
RESERVED_KEYS = frozenset({"frame_offsets", "time_offsets"})


class JobRequest(BaseModel):
    """The body of ``POST /videoinfer/``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_url: str = Field(min_length=1, max_length=4096)
    infer_fps: float = Field(default=1.0, gt=0)
    models: list[ModelSpec] = Field(min_length=1)
    callback_url: str | None = Field(default=None, max_length=2048)

    @field_validator("models")
    @classmethod
    def _distinct_ids(cls, value: list[ModelSpec]) -> list[ModelSpec]:
        ids = [m.model_id for m in value]
        if RESERVED_KEYS.intersection(ids):
            raise ValueError(f"model_id may not be one of {sorted(RESERVED_KEYS)}")
        if len(set(ids)) != len(ids):
            raise ValueError("each model_id may appear once per job (it names a results list)")
        return value


def models_to_json(models: list[ModelSpec] | tuple[ModelSpec, ...]) -> str:
    return json.dumps([m.model_dump() for m in models])


def models_from_json(text: str) -> tuple[ModelSpec, ...]:
    return tuple(ModelSpec.model_validate(m) for m in json.loads(text))
