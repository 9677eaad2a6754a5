"""Model profiles: which backend serves a model name, and how.

Profiles live in ``configs/models/*.yaml`` and are kept apart from Ray Serve's
deployment settings (replicas, resources), which live in ``serve_config.yaml`` or
``configs/*.yaml``. A profile is everything an engine needs to come up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from serve_app.media.budget import PixelBudget

#: ``model`` value that means "the tiny offline Qwen2.5-VL, built on first use".
TINY_MODEL = "builtin:tiny-qwen2.5-vl"


class OpenAIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = "http://127.0.0.1:8001/v1"
    #: Name of the environment variable holding the API key (never the key itself).
    api_key_env: str = "OPENAI_API_KEY"
    #: Model name on the remote server; defaults to the profile's ``model``.
    remote_model: str | None = None
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(2, ge=0)
    jpeg_quality: int = Field(90, ge=1, le=100)


class ModelProfile(BaseModel):
    """How one public model name is served."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Public name clients pass as ``model_path``.
    name: str = Field(min_length=1, max_length=200)
    backend: Literal["transformers", "vllm", "openai"]
    #: Hub id, local directory, :data:`TINY_MODEL`, or the remote model for ``openai``.
    model: str
    #: Text-only models (story writers) take no images or video.
    multimodal: bool = True
    max_new_tokens: int = Field(256, ge=1)
    max_model_len: int = Field(8192, ge=256)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: torch intra-op threads per replica (transformers backend); ``None`` = torch default.
    torch_threads: int | None = Field(None, ge=1)
    pixels: PixelBudget = Field(default_factory=PixelBudget)
    #: Extra ``AsyncEngineArgs`` for vLLM (gpu_memory_utilization, tensor_parallel_size, ...).
    vllm_engine_args: dict[str, Any] = Field(default_factory=dict)
    openai: OpenAIOptions = Field(default_factory=OpenAIOptions)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ModelProfile:
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a model profile must be a YAML mapping")
        return cls.model_validate(data)
