"""Whisper on transformers: any Whisper-compatible checkpoint, on CPU or GPU.

``model`` is a hub id (``openai/whisper-large-v3-turbo``) or a local directory. Each
chunk (at most 30 s, Whisper's window) goes through the feature extractor and
``generate(return_timestamps=True)``; the timestamp tokens Whisper emits delimit the
segments. Whisper gives no word timings here (``Segment.words`` is empty).
"""

from __future__ import annotations

import asyncio
from typing import Any

from serve_app.errors import BackendUnavailable
from serve_app.media.audio import is_silent
from serve_app.speech.base import SAMPLE_RATE, AudioChunk, Segment, SpeechEngine, clipped
from serve_app.speech.settings import WHISPER_WINDOW_S

#: Whisper's timestamp resolution (seconds per timestamp token).
TIME_PRECISION = 0.02


class WhisperEngine(SpeechEngine):
    """A Whisper checkpoint loaded with ``AutoModelForSpeechSeq2Seq``.

    Args:
        model: hub id or local directory.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        dtype: ``float32``, ``float16``, ``bfloat16`` or ``auto`` (half on CUDA).
        language: spoken language for multilingual checkpoints; ``None``: detected.
        threads: torch CPU threads.
        max_new_tokens: tokens per 30 s window (Whisper's limit is 448 with the prompt).
    """

    name = "whisper"
    max_chunk_s = WHISPER_WINDOW_S

    def __init__(
        self,
        model: str,
        device: str = "auto",
        dtype: str = "auto",
        language: str | None = None,
        threads: int = 1,
        max_new_tokens: int = 220,
    ) -> None:
        self._model_id = model
        self._device = device
        self._dtype = dtype
        self._language = language
        self._threads = threads
        self._max_new_tokens = max_new_tokens
        self._model: Any = None
        self._processor: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self._model is not None:
            return
        try:
            await asyncio.to_thread(self._load)
        except (ImportError, OSError, ValueError, RuntimeError) as exc:
            raise BackendUnavailable(
                f"whisper model {self._model_id!r} did not load: {exc}"
            ) from exc

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

        torch.set_num_threads(self._threads)
        device = self._device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self._dtype
        if dtype == "auto":
            dtype = "float16" if device.startswith("cuda") else "float32"
        processor = AutoProcessor.from_pretrained(self._model_id)
        model = AutoModelForSpeechSeq2Seq.from_pretrained(
            self._model_id, dtype=getattr(torch, dtype)
        )
        self._model = model.to(device).eval()
        self._processor = processor

    async def transcribe(self, chunk: AudioChunk) -> list[Segment]:
        if self._model is None:
            raise BackendUnavailable("whisper is not started")
        if is_silent(chunk):  # digital silence: decoders hallucinate words in it
            return []
        if chunk.duration_s > self.max_chunk_s + 1e-3:
            raise ValueError(f"whisper takes at most {self.max_chunk_s:g} s per chunk")
        async with self._lock:
            tokens = await asyncio.to_thread(self._generate, chunk)
        return clipped(self.segments_of(tokens), chunk)

    def _generate(self, chunk: AudioChunk) -> list[int]:
        import torch

        features = self._processor.feature_extractor(
            chunk.samples, sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features.to(self._model.device, self._model.dtype)
        options: dict[str, Any] = {
            "return_timestamps": True,
            "max_new_tokens": self._max_new_tokens,
        }
        if self._language and getattr(self._model.generation_config, "is_multilingual", False):
            options.update(language=self._language, task="transcribe")
        with torch.inference_mode():
            out = self._model.generate(features, **options)
        sequences = out if isinstance(out, torch.Tensor) else out["sequences"]
        return [int(t) for t in sequences[0].tolist()]

    def segments_of(self, tokens: list[int]) -> list[Segment]:
        """Segments from one window's tokens (times relative to the window).

        Timestamp tokens come in pairs around each segment's text; text after the last
        timestamp (a window cut mid-sentence) ends at the window's end.
        """
        tokenizer = self._processor.tokenizer
        first_ts = tokenizer.convert_tokens_to_ids("<|0.00|>")
        special = set(tokenizer.all_special_ids) | {
            i for i, t in tokenizer.added_tokens_decoder.items() if t.special
        }
        segments: list[Segment] = []
        text_ids: list[int] = []
        start: float | None = None
        last = 0.0
        for token in tokens:
            if token >= first_ts:
                at = (token - first_ts) * TIME_PRECISION
                if text_ids:
                    seg_start = start if start is not None else last
                    segments.append(self._segment(seg_start, max(at, seg_start), text_ids))
                    text_ids, start = [], None
                else:
                    start = at
                last = at
            elif token not in special:
                text_ids.append(token)
        if text_ids:
            seg_start = start if start is not None else last
            segments.append(self._segment(seg_start, WHISPER_WINDOW_S, text_ids))
        return segments

    def _segment(self, start: float, end: float, ids: list[int]) -> Segment:
        text = self._processor.tokenizer.decode(ids, skip_special_tokens=True)
        return Segment(start, end, text)

    async def check_health(self) -> None:
        if self._model is None:
            raise BackendUnavailable("whisper is not started")

    async def shutdown(self) -> None:
        self._model = None
        self._processor = None
