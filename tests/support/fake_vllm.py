"""A stand-in for the parts of vLLM 0.33 that ``VLLMEngine`` uses (vLLM needs CUDA).

Test double: it mirrors the real import paths and signatures (``vllm.SamplingParams``,
``vllm.sampling_params.RequestOutputKind``, ``vllm.engine.arg_utils.AsyncEngineArgs``,
``vllm.v1.engine.async_llm.AsyncLLM`` with ``from_engine_args``, ``generate``,
``abort``, ``check_health``, ``shutdown``; ``vllm.v1.engine.exceptions``) and records
what the engine passes in. :func:`install` puts it into ``sys.modules`` for one test.
"""

from __future__ import annotations

import asyncio
import enum
import sys
import types
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest


class RequestOutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


@dataclass(kw_only=True)
class StructuredOutputsConfig:
    """Subset of ``vllm.config.StructuredOutputsConfig`` (engine-wide)."""

    backend: str = "auto"
    disable_any_whitespace: bool = False


@dataclass(kw_only=True)
class StructuredOutputsParams:
    """Subset of ``vllm.sampling_params.StructuredOutputsParams`` (exactly one set)."""

    json: str | dict[str, Any] | None = None
    regex: str | None = None
    json_object: bool | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.json, self.regex, self.json_object)) != 1:
            raise ValueError("exactly one kind of structured outputs constraint")


@dataclass(kw_only=True)
class SamplingParams:
    """Subset of ``vllm.SamplingParams`` fields, same names and defaults (keyword-only)."""

    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    skip_special_tokens: bool = True
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE
    structured_outputs: StructuredOutputsParams | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < -1:
            raise ValueError(f"top_k must be 0 (disable), or at least 1, got {self.top_k}.")
        if self.temperature < 0.0:
            raise ValueError(f"temperature must be non-negative, got {self.temperature}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")


@dataclass
class AsyncEngineArgs:
    """Subset of ``vllm.engine.arg_utils.AsyncEngineArgs`` (a dataclass there too)."""

    model: str = "Qwen/Qwen3-0.6B"
    tokenizer: str | None = None
    dtype: str = "auto"
    seed: int = 0
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    max_num_seqs: int | None = None
    enable_prefix_caching: bool | None = None
    enforce_eager: bool = False
    trust_remote_code: bool = False
    limit_mm_per_prompt: dict[str, Any] = field(default_factory=dict)
    mm_processor_kwargs: dict[str, Any] | None = None
    structured_outputs_config: StructuredOutputsConfig | None = None
    enable_log_requests: bool = False
    disable_log_stats: bool = False


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: Any = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool


class EngineDeadError(Exception):
    pass


class EngineGenerateError(Exception):
    pass


@dataclass
class Behaviour:
    """What the fake engine does with the next request."""

    text: str = "A fake vLLM answer."
    prompt_tokens: int = 321
    output_tokens: int = 5
    finish_reason: str = "stop"
    error: Exception | None = None
    hang: bool = False


class AsyncLLM:
    """Fake ``vllm.v1.engine.async_llm.AsyncLLM``; the latest instance is ``AsyncLLM.last``."""

    last: AsyncLLM | None = None

    def __init__(self, engine_args: AsyncEngineArgs) -> None:
        self.engine_args = engine_args
        self.behaviour = Behaviour()
        self.calls: list[tuple[Any, SamplingParams, str]] = []
        self.aborted: list[tuple[str, bool]] = []
        self.health_error: Exception | None = None
        self.shutdown_calls = 0
        self.started_generation = asyncio.Event()

    @classmethod
    def from_engine_args(
        cls,
        engine_args: AsyncEngineArgs,
        start_engine_loop: bool = True,
        usage_context: Any = None,
        stat_loggers: list[Any] | None = None,
    ) -> AsyncLLM:
        cls.last = cls(engine_args)
        return cls.last

    async def generate(
        self,
        prompt: Any,
        sampling_params: SamplingParams,
        request_id: str,
        *,
        prompt_text: str | None = None,
        lora_request: Any = None,
        tokenization_kwargs: dict[str, Any] | None = None,
        trace_headers: Any = None,
        priority: int = 0,
        data_parallel_rank: int | None = None,
    ) -> AsyncGenerator[RequestOutput, None]:
        self.calls.append((prompt, sampling_params, request_id))
        self.started_generation.set()
        behaviour = self.behaviour
        try:
            if behaviour.error is not None:
                raise behaviour.error
            if behaviour.hang:
                await asyncio.Event().wait()
            tokens = list(range(behaviour.output_tokens))
            steps = (
                [behaviour.output_tokens]
                if sampling_params.output_kind is RequestOutputKind.FINAL_ONLY
                else range(1, behaviour.output_tokens + 1)
            )
            for n in steps:
                await asyncio.sleep(0)
                finished = n == behaviour.output_tokens
                completion = CompletionOutput(
                    index=0,
                    text=behaviour.text if finished else behaviour.text[:n],
                    token_ids=tokens[:n],
                    finish_reason=behaviour.finish_reason if finished else None,
                )
                yield RequestOutput(
                    request_id=request_id,
                    prompt=prompt.get("prompt"),
                    prompt_token_ids=list(range(behaviour.prompt_tokens)),
                    prompt_logprobs=None,
                    outputs=[completion],
                    finished=finished,
                )
        except asyncio.CancelledError:  # the real engine aborts on cancellation too
            await self.abort(request_id, internal=True)
            raise

    async def abort(self, request_id: str | Iterable[str], internal: bool = False) -> None:
        ids = [request_id] if isinstance(request_id, str) else list(request_id)
        self.aborted.extend((i, internal) for i in ids)

    async def check_health(self) -> None:
        if self.health_error is not None:
            raise self.health_error

    def shutdown(self, timeout: float | None = None) -> None:
        self.shutdown_calls += 1


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import vllm...`` resolve to this fake for the current test."""
    modules = {
        "vllm": _module("vllm", SamplingParams=SamplingParams),
        "vllm.sampling_params": _module(
            "vllm.sampling_params",
            SamplingParams=SamplingParams,
            RequestOutputKind=RequestOutputKind,
            StructuredOutputsParams=StructuredOutputsParams,
        ),
        "vllm.config": _module("vllm.config", StructuredOutputsConfig=StructuredOutputsConfig),
        "vllm.engine": _module("vllm.engine"),
        "vllm.engine.arg_utils": _module("vllm.engine.arg_utils", AsyncEngineArgs=AsyncEngineArgs),
        "vllm.v1": _module("vllm.v1"),
        "vllm.v1.engine": _module("vllm.v1.engine"),
        "vllm.v1.engine.async_llm": _module("vllm.v1.engine.async_llm", AsyncLLM=AsyncLLM),
        "vllm.v1.engine.exceptions": _module(
            "vllm.v1.engine.exceptions",
            EngineDeadError=EngineDeadError,
            EngineGenerateError=EngineGenerateError,
        ),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    AsyncLLM.last = None
