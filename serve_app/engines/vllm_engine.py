"""vLLM backend (``AsyncLLM``, continuous batching).

vLLM is an optional dependency, imported inside :meth:`VLLMEngine.start`: the CUDA wheel
(``serve_app[vllm]``) on GPUs, or its CPU build in ``.venv-vllm`` (scripts/setup_vllm.sh).
The pure input building (:func:`build_vllm_prompt`, :func:`build_sampling_kwargs`,
:func:`build_engine_kwargs`) needs no vLLM and is tested on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import uuid
from typing import Any

import numpy as np
from PIL import Image

from serve_app.engines.base import (
    DeltaStream,
    Engine,
    GenerationDelta,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
)
from serve_app.engines.chat import build_messages, require_text_only, video_metadata
from serve_app.engines.profile import ModelProfile
from serve_app.errors import BackendUnavailable, GenerationFailed, InvalidRequest, ServeAppError

logger = logging.getLogger(__name__)

#: Images per prompt unless ``vllm_engine_args.limit_mm_per_prompt`` says otherwise.
DEFAULT_MAX_IMAGES = 8


def build_engine_kwargs(profile: ModelProfile, model_source: str) -> dict[str, Any]:
    """``AsyncEngineArgs`` keyword arguments; ``profile.vllm_engine_args`` win."""
    kwargs: dict[str, Any] = {
        "model": model_source,
        "max_model_len": profile.max_model_len,
        "dtype": profile.dtype,
    }
    if profile.multimodal:
        pixels = profile.pixels
        kwargs["limit_mm_per_prompt"] = {"image": DEFAULT_MAX_IMAGES, "video": 1}
        # Frames arrive resized within the budget; a processor range covering both
        # modalities leaves them as they are.
        kwargs["mm_processor_kwargs"] = {
            "min_pixels": min(pixels.image_min_pixels, pixels.video_min_pixels),
            "max_pixels": max(pixels.image_max_pixels, pixels.video_max_pixels),
        }
    # JSON output without free whitespace between tokens: compact, and a model cannot
    # spend its token budget on blanks (the tiny model did: "{" then only whitespace).
    # vLLM allows the flag with the xgrammar (its default) and guidance backends only.
    kwargs["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
    kwargs.update(profile.vllm_engine_args)
    return kwargs


def _engine_args(profile: ModelProfile, model_source: str) -> dict[str, Any]:
    """:func:`build_engine_kwargs` with vLLM's config objects (needs vLLM)."""
    from vllm.config import StructuredOutputsConfig

    kwargs = build_engine_kwargs(profile, model_source)
    structured = kwargs.get("structured_outputs_config")
    if isinstance(structured, dict):  # AsyncEngineArgs does not convert this one itself
        kwargs["structured_outputs_config"] = StructuredOutputsConfig(**structured)
    return kwargs


def build_sampling_kwargs(sampling: SamplingParams) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments (temperature 0 is greedy in vLLM)."""
    kwargs: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if sampling.temperature > 0:
        kwargs["top_k"] = 0  # only temperature and top_p decide, not the model's default
    if sampling.seed is not None:
        kwargs["seed"] = sampling.seed
    if sampling.stop:
        kwargs["stop"] = list(sampling.stop)
    return kwargs


def build_structured_outputs(response_format: str | None) -> dict[str, Any] | None:
    """``vllm.sampling_params.StructuredOutputsParams`` keyword arguments for OpenAI's
    ``response_format`` (JSON), as vLLM's own server maps it; ``None`` for plain text.

    ``json_object`` → ``json_object=True`` (any JSON object); ``json_schema`` →
    ``json=<schema>`` (output valid under the schema).
    """
    if response_format is None:
        return None
    fmt = json.loads(response_format)
    if fmt.get("type") == "json_object":
        return {"json_object": True}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format json_schema needs a schema")
        return {"json": schema}
    return None


def vllm_video(request: GenerationRequest) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The ``(frames THWC uint8, metadata)`` pair vLLM's Qwen2.5-VL processor expects."""
    if request.video is None:
        return None
    metadata = video_metadata(request.video)
    metadata["do_sample_frames"] = False  # frames are sampled already
    return np.ascontiguousarray(request.video.frames), metadata


def build_vllm_prompt(
    request: GenerationRequest,
    processor: Any,
    mm_processor_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A vLLM prompt dict rendered with the model's own chat template.

    ``processor`` is the Hugging Face processor (or, for text-only models, tokenizer)
    of the served model.
    """
    text = processor.apply_chat_template(
        build_messages(request), tokenize=False, add_generation_prompt=True
    )
    prompt: dict[str, Any] = {"prompt": text}
    mm_data: dict[str, Any] = {}
    if request.images:
        mm_data["image"] = [Image.fromarray(image) for image in request.images]
    video = vllm_video(request)
    if video is not None:
        mm_data["video"] = [video]
    if mm_data:
        prompt["multi_modal_data"] = mm_data
        if mm_processor_kwargs:
            prompt["mm_processor_kwargs"] = dict(mm_processor_kwargs)
    return prompt


def _error_name(exc: BaseException) -> str:
    return type(exc).__name__


def _error_names(exc: BaseException) -> set[str]:
    """Class names of ``exc`` and its bases: vLLM's errors are matched by name, lazily."""
    return {cls.__name__ for cls in type(exc).__mro__}


#: vLLM errors that mean "not now": a paused or overloaded engine, a request-level fault
#: that is safe to resend (``RetryableRequestError``, in 0.32's ``vllm.exceptions`` and
#: raised by 0.33's ``generate``), a full queue (``GracefulHTTPError`` with 503/429).
_RETRYABLE_ERRORS = frozenset({"RetryableRequestError", "GracefulHTTPError"})
#: Finish reasons of a request the engine ended, not the model: ``abort`` (e.g.
#: ``pause_generation(mode="abort")`` while draining or updating weights) and ``error``
#: (a request-level internal error vLLM's own server answers with a retryable error).
_RETRYABLE_FINISH_REASONS = frozenset({"abort", "error"})
#: Seconds a client should wait before resending after a retryable vLLM state.
RETRY_AFTER_S = 5


def render_prompt(llm: Any, prompt: dict[str, Any]) -> Any:
    """``prompt`` as the engine input vLLM's Renderer makes of it (blocking: use a thread).

    vLLM 0.32 and 0.33 deprecate raw ``{"prompt", "multi_modal_data"}`` dicts in
    ``AsyncLLM.generate`` in favour of ``Renderer.render_cmpl`` outputs. These are the
    calls both versions' (byte-identical) ``InputProcessor.process_inputs`` makes for a
    raw dict, which ``AsyncLLM`` runs in a worker thread. An engine without a Renderer
    (vLLM before it, or a test double) takes the dict itself.
    """
    renderer = getattr(llm, "renderer", None)
    if renderer is None:
        return prompt
    from vllm.renderers.inputs.preprocess import parse_model_prompt

    parsed = parse_model_prompt(llm.model_config, prompt)
    (engine_input,) = renderer.render_cmpl([parsed], renderer.default_cmpl_tok_params)
    return engine_input


class VLLMEngine(Engine):
    """Serves a :class:`ModelProfile` with vLLM's ``AsyncLLM`` in this process."""

    name = "vllm"
    supports_batching = False  # vLLM batches continuously across concurrent calls
    constrains_output = True  # structured outputs

    def __init__(self, profile: ModelProfile, model_source: str | None = None) -> None:
        self._profile = profile
        self._source = model_source or profile.model
        self._engine: Any = None
        self._processor: Any = None
        self._sampling_cls: Any = None
        self._structured_cls: Any = None
        self._final_only: Any = None
        self._delta: Any = None
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._start_lock:
            if self._engine is not None:
                return
            try:
                from vllm import SamplingParams as VllmSamplingParams
                from vllm.engine.arg_utils import AsyncEngineArgs
                from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
                from vllm.v1.engine.async_llm import AsyncLLM
            except ImportError as exc:
                raise BackendUnavailable(
                    "the vllm backend needs the 'vllm' extra (pip install 'serve_app[vllm]')",
                    retry_after_s=60,
                ) from exc
            try:
                args = AsyncEngineArgs(**_engine_args(self._profile, self._source))
                self._processor = await asyncio.to_thread(self._load_processor)
                self._engine = AsyncLLM.from_engine_args(args)
            except Exception as exc:
                logger.exception("starting vLLM for %s failed", self._profile.name)
                raise BackendUnavailable(
                    f"model {self._profile.name!r} could not be started ({_error_name(exc)})",
                    retry_after_s=60,
                ) from exc
            self._sampling_cls = VllmSamplingParams
            self._structured_cls = StructuredOutputsParams
            self._final_only = RequestOutputKind.FINAL_ONLY
            self._delta = RequestOutputKind.DELTA

    def _load_processor(self) -> Any:
        from transformers import AutoProcessor, AutoTokenizer

        if self._profile.multimodal:
            return AutoProcessor.from_pretrained(self._source)
        return AutoTokenizer.from_pretrained(self._source)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        engine = self._engine
        if engine is None:
            raise BackendUnavailable(f"model {self._profile.name!r} is not started")
        if not self._profile.multimodal:
            require_text_only(request, self._profile.name)
        request_id = f"{request.request_id or 'req'}-{uuid.uuid4().hex[:12]}"
        final = None
        try:
            prompt = build_vllm_prompt(request, self._processor)
            engine_input = await asyncio.to_thread(render_prompt, engine, prompt)
            params = self._params(request.sampling, self._final_only)
            async for output in engine.generate(engine_input, params, request_id):
                final = output
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await engine.abort(request_id)
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        if final is None or not final.outputs:
            raise GenerationFailed(f"model {self._profile.name!r} returned no output")
        completion = final.outputs[0]
        if completion.finish_reason in _RETRYABLE_FINISH_REASONS:
            raise BackendUnavailable(
                f"the vLLM engine ended the request ({completion.finish_reason}); retry",
                retry_after_s=RETRY_AFTER_S,
            )
        if not completion.text.strip():
            raise GenerationFailed(f"model {self._profile.name!r} returned no text")
        return GenerationResult(
            text=completion.text.strip(),
            input_tokens=len(final.prompt_token_ids or ()),
            output_tokens=len(completion.token_ids),
            finish_reason=completion.finish_reason or "stop",
        )

    async def generate_stream(self, request: GenerationRequest) -> DeltaStream:
        """vLLM's own delta outputs; closing the stream aborts the request in the engine."""
        engine = self._engine
        if engine is None:
            raise BackendUnavailable(f"model {self._profile.name!r} is not started")
        if not self._profile.multimodal:
            require_text_only(request, self._profile.name)
        request_id = f"{request.request_id or 'req'}-{uuid.uuid4().hex[:12]}"
        prompt_tokens = output_tokens = 0
        finish: str | None = None
        done = False
        try:
            prompt = build_vllm_prompt(request, self._processor)
            params = self._params(request.sampling, self._delta)
            async for output in engine.generate(prompt, params, request_id):
                prompt_tokens = len(output.prompt_token_ids or ()) or prompt_tokens
                if not output.outputs:
                    continue
                completion = output.outputs[0]
                output_tokens += len(completion.token_ids)
                finish = completion.finish_reason or finish
                if completion.text:
                    yield GenerationDelta(text=completion.text)
            done = True
        except Exception as exc:
            raise self._map_error(exc) from exc
        finally:
            if not done:  # closed early, cancelled or failed: free the engine's slot
                with contextlib.suppress(Exception):
                    await engine.abort(request_id)
        yield GenerationDelta(
            text="",
            finish_reason=finish or "stop",
            input_tokens=prompt_tokens,
            output_tokens=output_tokens,
        )

    def _params(self, sampling: SamplingParams, output_kind: Any) -> Any:
        """``vllm.SamplingParams``, with structured outputs for a JSON ``response_format``."""
        kwargs = build_sampling_kwargs(sampling)
        structured = build_structured_outputs(sampling.response_format)
        if structured is not None:
            kwargs["structured_outputs"] = self._structured_cls(**structured)
        return self._sampling_cls(**kwargs, output_kind=output_kind)

    def _map_error(self, exc: Exception) -> Exception:
        if isinstance(exc, ServeAppError):
            return exc
        name = _error_name(exc)
        if name == "EngineDeadError":
            return BackendUnavailable("the vLLM engine died", retry_after_s=30)
        if _error_names(exc) & _RETRYABLE_ERRORS:
            return BackendUnavailable(
                f"the vLLM engine cannot take the request now ({name}); retry",
                retry_after_s=RETRY_AFTER_S,
            )
        if name in {"VLLMValidationError", "VLLMClientError"} or isinstance(exc, ValueError):
            return InvalidRequest(f"the model rejected the input: {exc}")
        logger.error("vLLM generation failed: %s", name, exc_info=exc)
        return GenerationFailed(f"generation failed ({name})")

    async def check_health(self) -> None:
        if self._engine is None:
            raise BackendUnavailable(f"model {self._profile.name!r} is not started")
        try:
            await self._engine.check_health()
        except Exception as exc:
            raise BackendUnavailable(f"the vLLM engine is unhealthy ({_error_name(exc)})") from exc

    async def shutdown(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        result = engine.shutdown()
        if inspect.isawaitable(result):
            await result
