"""Pocketsphinx: offline English speech recognition, the embedded default and CI's.

The ``pocketsphinx`` wheel ships CMU's US English acoustic model, language model and
dictionary, so nothing is downloaded. Each chunk is decoded as one utterance, from the
model's initial cepstral means (so results do not depend on earlier chunks); the
decoder's word segmentation (10 ms frames) gives word timings, and pauses of at least
:data:`PAUSE_S` split the words into segments.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import numpy as np

from serve_app.errors import BackendUnavailable
from serve_app.media.audio import is_silent
from serve_app.speech.base import SAMPLE_RATE, AudioChunk, Segment, SpeechEngine, Word, clipped

#: A pause at least this long (seconds) between two words starts a new segment.
PAUSE_S = 0.35
#: Pocketsphinx's frame rate (frames per second) with its default ``-frate``.
_FRAME_RATE = 100
_ALTERNATE = re.compile(r"\(\d+\)$")


class PocketsphinxEngine(SpeechEngine):
    """Pocketsphinx on the packaged model or a model directory (``model_dir``).

    Args:
        model_dir: an acoustic model directory (with ``mdef``); the language model
            (``*.lm.bin``) and dictionary (``*.dict``) are looked for beside it. ``None``:
            the packaged US English model.
    """

    name = "pocketsphinx"

    def __init__(self, model_dir: Path | None = None) -> None:
        self._model_dir = model_dir
        self._decoder: Any = None
        self._cmn = ""
        self._lock = asyncio.Lock()

    def _config(self) -> dict[str, Any]:
        options: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        if self._model_dir is not None:
            hmm = Path(self._model_dir)
            options["hmm"] = str(hmm)
            for pattern, key in (("*.lm.bin", "lm"), ("*.dict", "dict")):
                found = sorted(hmm.parent.glob(pattern)) or sorted(hmm.glob(pattern))
                if found:
                    options[key] = str(found[0])
        return options

    async def start(self) -> None:
        if self._decoder is not None:
            return
        try:
            from pocketsphinx import Decoder

            decoder = await asyncio.to_thread(Decoder, **self._config())
            self._cmn = decoder.get_cmn(False)
            self._decoder = decoder
        except (ImportError, RuntimeError, ValueError, OSError) as exc:
            raise BackendUnavailable(f"pocketsphinx did not start: {exc}") from exc

    async def transcribe(self, chunk: AudioChunk) -> list[Segment]:
        if self._decoder is None:
            raise BackendUnavailable("pocketsphinx is not started")
        if is_silent(chunk):  # digital silence: decoders hallucinate words in it
            return []
        async with self._lock:  # one decoder: one utterance at a time
            words = await asyncio.to_thread(self._decode, chunk.samples)
        return clipped(group_words(words, PAUSE_S), chunk)

    def _decode(self, samples: np.ndarray) -> list[Word]:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        decoder = self._decoder
        # Cepstral mean normalisation adapts across utterances: start every chunk from
        # the model's initial means, so chunks are independent (the engine contract).
        decoder.set_cmn(self._cmn)
        decoder.start_utt()
        decoder.process_raw(pcm, no_search=False, full_utt=True)
        decoder.end_utt()
        if decoder.hyp() is None:
            return []
        words = []
        for seg in decoder.seg():
            text = _ALTERNATE.sub("", seg.word)
            if not text or text[0] in "<[":  # <s>, </s>, <sil>, [NOISE]...
                continue
            start, end = seg.start_frame / _FRAME_RATE, (seg.end_frame + 1) / _FRAME_RATE
            words.append(Word(text, start, end))
        return words

    async def check_health(self) -> None:
        if self._decoder is None:
            raise BackendUnavailable("pocketsphinx is not started")

    async def shutdown(self) -> None:
        self._decoder = None


def group_words(words: list[Word], pause_s: float) -> list[Segment]:
    """Words (in time order) as segments, split where a pause of ``pause_s`` or more falls."""
    segments: list[Segment] = []
    current: list[Word] = []
    for word in words:
        if current and word.start_s - current[-1].end_s >= pause_s:
            segments.append(_segment(current))
            current = []
        current.append(word)
    if current:
        segments.append(_segment(current))
    return segments


def _segment(words: list[Word]) -> Segment:
    text = " ".join(w.text for w in words)
    return Segment(words[0].start_s, words[-1].end_s, text, tuple(words))
