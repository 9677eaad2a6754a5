"""Hugging Face transformers backend: any Qwen2.5-VL-compatible checkpoint, CPU or GPU.

The model runs in worker threads (``asyncio.to_thread``) under one lock, so the event
loop stays free and one forward pass runs at a time. ``generate_batch`` left-pads
several requests and runs one ``model.generate`` per group of equal sampling settings.
It cannot constrain output to a JSON ``response_format`` and refuses such requests
(:class:`ParameterError` naming ``response_format``) rather than ignore the format.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from serve_app.engines.base import (
    DeltaStream,
    Engine,
    GenerationDelta,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    cut_at_stop,
)
from serve_app.engines.chat import build_messages, require_text_only, video_metadata
from serve_app.engines.profile import ModelProfile
from serve_app.errors import (
    BackendUnavailable,
    GenerationFailed,
    InvalidRequest,
    ParameterError,
    ServeAppError,
)

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_OOM_ERRORS: tuple[type[BaseException], ...] = (torch.cuda.OutOfMemoryError, MemoryError)


def resolve_device(device: str) -> str:
    """``auto`` means CUDA when available, else CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype | str:
    """``auto`` keeps the checkpoint's dtype on GPU and uses float32 on CPU."""
    if dtype == "auto":
        return "auto" if device == "cuda" else torch.float32
    return _DTYPES[dtype]


def apply_torch_threads(threads: int | None) -> None:
    """Pin torch's intra-op (and, once per process, inter-op) thread counts."""
    if threads is None:
        return
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    # Only settable before inter-op work starts; later calls keep what is set.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)


def sampling_kwargs(sampling: SamplingParams) -> dict[str, Any]:
    """``model.generate`` keyword arguments for our sampling parameters."""
    if sampling.temperature == 0:
        return {"max_new_tokens": sampling.max_tokens, "do_sample": False}
    return {
        "max_new_tokens": sampling.max_tokens,
        "do_sample": True,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": 0,  # only temperature and top_p decide, as in the other backends
    }


class _Cancelled(StoppingCriteria):
    """Stops ``generate`` once the awaiting caller has been cancelled."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        return torch.full(
            (input_ids.shape[0],), self._event.is_set(), dtype=torch.bool, device=input_ids.device
        )


class TransformersEngine(Engine):
    """Serves a :class:`ModelProfile` with ``transformers`` in this process."""

    name = "transformers"
    supports_batching = True

    def __init__(self, profile: ModelProfile, model_source: str | None = None) -> None:
        self._profile = profile
        self._source = model_source or profile.model
        self._device = resolve_device(profile.device)
        self._model: Any = None
        self._processor: Any = None
        self._tokenizer: Any = None
        self._eos_ids: set[int] = set()
        self._lock = threading.Lock()
        self._start_lock = asyncio.Lock()
        self._fatal: str | None = None

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        async with self._start_lock:
            if self._model is not None:
                return
            try:
                await asyncio.to_thread(self._load)
            except Exception as exc:
                logger.exception("loading %s failed", self._profile.name)
                raise BackendUnavailable(
                    f"model {self._profile.name!r} could not be loaded ({type(exc).__name__})",
                    retry_after_s=30,
                ) from exc

    def _load(self) -> None:
        from transformers import (
            AutoModelForCausalLM,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
        )

        apply_torch_threads(self._profile.torch_threads)
        load: dict[str, Any] = {"dtype": resolve_dtype(self._profile.dtype, self._device)}
        if self._device != "cpu":
            load["device_map"] = self._device  # straight onto the GPU, not via host memory
        model: Any
        if self._profile.multimodal:
            processor = AutoProcessor.from_pretrained(self._source)
            tokenizer = processor.tokenizer
            model = AutoModelForImageTextToText.from_pretrained(self._source, **load)
        else:
            processor = tokenizer = AutoTokenizer.from_pretrained(self._source)
            try:
                model = AutoModelForCausalLM.from_pretrained(self._source, **load)
            except ValueError:  # a vision-language checkpoint serving text only
                model = AutoModelForImageTextToText.from_pretrained(self._source, **load)
        if getattr(processor, "chat_template", None) is None:
            raise ValueError("the model ships no chat template")
        tokenizer.padding_side = "left"
        model.to(self._device).eval()
        eos = model.generation_config.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or ())
        eos_ids.add(tokenizer.eos_token_id)
        self._processor, self._tokenizer, self._model = processor, tokenizer, model
        self._eos_ids = {int(i) for i in eos_ids if i is not None}
        self._fatal = None

    async def check_health(self) -> None:
        if self._model is None:
            raise BackendUnavailable(f"model {self._profile.name!r} is not loaded")
        if self._fatal is not None:
            raise BackendUnavailable(f"model {self._profile.name!r} is broken: {self._fatal}")

    async def shutdown(self) -> None:
        async with self._start_lock:
            if self._model is None:
                return
            await asyncio.to_thread(self._unload)

    def _unload(self) -> None:
        with self._lock:
            self._model = self._processor = self._tokenizer = None
            gc.collect()
            if self._device == "cuda":
                torch.cuda.empty_cache()

    # -- generation ------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        [result] = await self.generate_batch([request])
        if not result.text.strip():
            raise GenerationFailed(f"model {self._profile.name!r} returned no text")
        return result

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Results in request order; an empty ``text`` is left for the caller to judge."""
        await self.check_health()
        if not self._profile.multimodal:
            for request in requests:
                require_text_only(request, self._profile.name)
        if not requests:
            return []
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(self._generate_sync, list(requests), cancel)
        except asyncio.CancelledError:
            cancel.set()  # the worker thread stops at its next decoding step
            raise
        except ServeAppError:
            raise
        except Exception as exc:
            logger.exception("generation failed")
            raise GenerationFailed(f"generation failed ({type(exc).__name__})") from exc

    def _generate_sync(
        self, requests: list[GenerationRequest], cancel: threading.Event
    ) -> list[GenerationResult]:
        with self._lock:
            if self._model is None:
                raise BackendUnavailable(f"model {self._profile.name!r} is not loaded")
            apply_torch_threads(self._profile.torch_threads)
            groups: dict[SamplingParams, list[int]] = {}
            for i, request in enumerate(requests):
                groups.setdefault(request.sampling, []).append(i)
            results: list[GenerationResult | None] = [None] * len(requests)
            for sampling, indices in groups.items():
                if cancel.is_set():
                    raise GenerationFailed("cancelled")
                group = [requests[i] for i in indices]
                outputs = self._generate_group(group, sampling, cancel)
                for i, result in zip(indices, outputs, strict=True):
                    results[i] = result
            return [r for r in results if r is not None]

    def _generate_group(
        self, requests: list[GenerationRequest], sampling: SamplingParams, cancel: threading.Event
    ) -> list[GenerationResult]:
        inputs, prompt_lengths, kwargs = self._prepare(requests, sampling)
        output = self._call_generate(inputs, kwargs, cancel)
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        return [
            self._result(tokens, int(n), sampling.max_tokens, sampling.stop)
            for tokens, n in zip(new_tokens, prompt_lengths, strict=True)
        ]

    def _prepare(
        self, requests: list[GenerationRequest], sampling: SamplingParams
    ) -> tuple[Any, list[int], dict[str, Any]]:
        """Encoded inputs, each prompt's length and ``generate``'s keyword arguments."""
        if sampling.response_format is not None:
            raise ParameterError(
                f"response_format is not supported by model {self._profile.name!r} "
                "(the transformers engine cannot constrain its output)",
                "response_format",
            )
        try:
            inputs = self._encode(requests).to(self._device)
        except ValueError as exc:
            raise InvalidRequest(f"the model's processor rejected the input: {exc}") from exc
        prompt_lengths = [int(n) for n in inputs["attention_mask"].sum(dim=1).tolist()]
        longest = max(prompt_lengths)
        if longest >= self._profile.max_model_len:
            raise InvalidRequest(
                f"the prompt is {longest} tokens; the model's limit is "
                f"{self._profile.max_model_len}"
            )
        kwargs = sampling_kwargs(sampling)
        kwargs["max_new_tokens"] = min(
            kwargs["max_new_tokens"], self._profile.max_model_len - longest
        )
        if sampling.temperature > 0 and sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        return inputs, prompt_lengths, kwargs

    def _call_generate(
        self, inputs: Any, kwargs: dict[str, Any], cancel: threading.Event, streamer: Any = None
    ) -> Any:
        try:
            with torch.inference_mode():
                return self._model.generate(
                    **inputs,
                    **kwargs,
                    pad_token_id=self._tokenizer.pad_token_id,
                    stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
                    streamer=streamer,
                )
        except _OOM_ERRORS as exc:
            if self._device == "cuda":
                torch.cuda.empty_cache()
            raise BackendUnavailable("the model ran out of memory; try again later") from exc
        except RuntimeError as exc:
            if "CUDA error" in str(exc):
                self._fatal = "CUDA error"
                raise BackendUnavailable("the GPU reported an error", retry_after_s=30) from exc
            logger.exception("generation failed")
            raise GenerationFailed(f"generation failed ({type(exc).__name__})") from exc

    # -- streaming -------------------------------------------------------------------
    async def generate_stream(self, request: GenerationRequest) -> DeltaStream:
        """Token by token from the generating thread; closing the stream stops it."""
        await self.check_health()
        if not self._profile.multimodal:
            require_text_only(request, self._profile.name)
        queue: asyncio.Queue[list[int] | None] = asyncio.Queue()
        streamer = _TokenQueue(asyncio.get_running_loop(), queue)
        cancel = threading.Event()
        worker = asyncio.ensure_future(
            asyncio.to_thread(self._stream_sync, request, streamer, cancel)
        )
        decoder = _IncrementalText(self._tokenizer, self._eos_ids, request.sampling)
        try:
            while (ids := await queue.get()) is not None:
                piece = decoder.add(ids)
                if piece:
                    yield GenerationDelta(text=piece)
                if decoder.finish_reason is not None:
                    cancel.set()
                    break
            prompt_tokens = await worker
        except ServeAppError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("streamed generation failed")
            raise GenerationFailed(f"generation failed ({type(exc).__name__})") from exc
        finally:
            cancel.set()  # the worker thread stops at its next decoding step
        yield GenerationDelta(
            text=decoder.flush(),
            finish_reason=decoder.finish_reason or "length",
            input_tokens=prompt_tokens,
            output_tokens=decoder.output_tokens,
        )

    def _stream_sync(
        self, request: GenerationRequest, streamer: _TokenQueue, cancel: threading.Event
    ) -> int:
        """Generate for one request, handing tokens to ``streamer``; the prompt's length."""
        try:
            with self._lock:
                if self._model is None:
                    raise BackendUnavailable(f"model {self._profile.name!r} is not loaded")
                apply_torch_threads(self._profile.torch_threads)
                inputs, [prompt_tokens], kwargs = self._prepare([request], request.sampling)
                if not cancel.is_set():
                    self._call_generate(inputs, kwargs, cancel, streamer)
                return prompt_tokens
        finally:
            streamer.end()

    def _encode(self, requests: list[GenerationRequest]) -> Any:
        texts = [
            self._processor.apply_chat_template(
                build_messages(r), tokenize=False, add_generation_prompt=True
            )
            for r in requests
        ]
        if not self._profile.multimodal:
            return self._tokenizer(texts, padding=True, return_tensors="pt")
        pixels = self._profile.pixels
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        images = [image for r in requests for image in r.images]
        if images:
            kwargs["images"] = images
            kwargs["images_kwargs"] = {
                "size": {
                    "shortest_edge": pixels.image_min_pixels,
                    "longest_edge": pixels.image_max_pixels,
                },
                "input_data_format": "channels_last",
            }
        videos = [r.video for r in requests if r.video is not None]
        if videos:
            kwargs["videos"] = [v.frames for v in videos]
            videos_kwargs: dict[str, Any] = {
                "video_metadata": [video_metadata(v) for v in videos],
                "do_sample_frames": False,
                "size": {
                    "shortest_edge": pixels.video_min_pixels,
                    "longest_edge": pixels.video_max_pixels,
                },
                "input_data_format": "channels_last",
            }
            if hasattr(self._processor.video_processor, "cap_pixels_per_frame"):
                videos_kwargs["cap_pixels_per_frame"] = False  # frames obey our budget
            kwargs["videos_kwargs"] = videos_kwargs
        with warnings.catch_warnings():
            # Frames arrive zero-copy (read-only) from Ray's object store; the
            # processor only reads them, so torch's "not writable" warning is noise.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return self._processor(**kwargs)

    def _result(
        self, tokens: list[int], prompt_tokens: int, max_tokens: int, stop: tuple[str, ...] = ()
    ) -> GenerationResult:
        """Count tokens up to and including the first end-of-sequence token."""
        end = next((i for i, t in enumerate(tokens) if t in self._eos_ids), None)
        if end is None:
            generated = tokens[:max_tokens]
            finish_reason = "length"
        else:
            generated = tokens[: end + 1]
            finish_reason = "stop"
        text = self._tokenizer.decode(generated, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, stop)
        return GenerationResult(
            text=text.strip(),
            input_tokens=prompt_tokens,
            output_tokens=len(generated),
            finish_reason="stop" if stopped else finish_reason,
        )


class _TokenQueue(BaseStreamer):
    """Hands each new token id from the generating thread to the event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[list[int] | None]
    ) -> None:
        self._loop = loop
        self._queue = queue
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first puts the prompt itself
            self._prompt_seen = True
            return
        ids = [int(i) for i in value.reshape(-1).tolist()]
        self._loop.call_soon_threadsafe(self._queue.put_nowait, ids)

    def end(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)


class _IncrementalText:
    """Decodes a growing token list into text pieces, honouring EOS and stop strings."""

    def __init__(self, tokenizer: Any, eos_ids: set[int], sampling: SamplingParams) -> None:
        self._tokenizer = tokenizer
        self._eos = eos_ids
        self._sampling = sampling
        self._ids: list[int] = []
        self._sent = ""
        self._text = ""
        self.finish_reason: str | None = None

    @property
    def output_tokens(self) -> int:
        return len(self._ids)

    def add(self, ids: list[int]) -> str:
        """The text that became final with ``ids`` (may be empty)."""
        for token in ids:
            if self.finish_reason is not None:
                break
            self._ids.append(token)
            if token in self._eos:
                self.finish_reason = "stop"
            elif len(self._ids) >= self._sampling.max_tokens:
                self.finish_reason = "length"
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True).lstrip()
        text, stopped = cut_at_stop(text, self._sampling.stop)
        if stopped:
            self.finish_reason = "stop"
        self._text = text
        if self.finish_reason is None:
            # Hold back an incomplete UTF-8 sequence and what may begin a stop string.
            text = text.rstrip("\ufffd")
            text = text[: len(text) - _held_back(text, self._sampling.stop)]
        return self._take(text.rstrip() if self.finish_reason else text)

    def flush(self) -> str:
        """What is left once generation has ended."""
        return self._take(self._text.rstrip())

    def _take(self, text: str) -> str:
        if len(text) <= len(self._sent) or not text.startswith(self._sent):
            return ""
        piece, self._sent = text[len(self._sent) :], text
        return piece


def _held_back(text: str, stop: tuple[str, ...]) -> int:
    """How many trailing characters of ``text`` could still grow into a stop string."""
    longest = 0
    for s in stop:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if s.startswith(text[-n:]):
                longest = max(longest, n)
                break
    return longest
