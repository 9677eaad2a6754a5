"""A tiny random-weight Whisper, built offline and deterministically.

Tests and benchmarks use it to run the transformers Whisper path for real
(``WhisperForConditionalGeneration``, ``WhisperFeatureExtractor``, a real
``WhisperTokenizer`` with Whisper's special and timestamp tokens, a generation config
with the fields ``generate(return_timestamps=True)`` reads). Its text is meaningless.
The tokenizer is a byte-level BPE trained with ``tokenizers`` on a small built-in corpus,
so nothing is downloaded; weights come from numpy's PCG64 under a fixed seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when the layout of the built model changes.
FORMAT_VERSION = 1
MARKER_FILE = ".tiny-whisper-complete.json"

#: Whisper's special tokens before the timestamps, in OpenAI's order (English-only set).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
)
#: ``<|0.00|>`` .. ``<|30.00|>`` in steps of 20 ms, as Whisper's vocabulary has them.
TIMESTAMP_TOKENS = tuple(f"<|{i * 0.02:.2f}|>" for i in range(1501))

_EOT = "<|endoftext|>"
_BPE_VOCAB_SIZE = 512
_CORPUS = """\
The quick brown fox jumps over the lazy dog.
Please call me tomorrow morning at nine o'clock.
Welcome to the lecture; today we talk about video, audio and speech.
In this interview the guest explains how the product works, step by step.
One, two, three, four, five, six, seven, eight, nine, ten.
"""


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.trainers import BpeTrainer
    from transformers import AddedToken, WhisperTokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    lines = _CORPUS.splitlines()
    tok.train_from_iterator(lines + [line.lower() for line in lines], trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    vocab = dict(model["vocab"])
    specials = SPECIAL_TOKENS + TIMESTAMP_TOKENS
    vocab.update({t: len(vocab) + i for i, t in enumerate(specials)})
    whisper = WhisperTokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=448,
        **dict.fromkeys(("unk_token", "bos_token", "eos_token", "pad_token"), _EOT),
    )
    whisper.add_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return whisper


def _config(tokenizer: Any) -> Any:
    from transformers import WhisperConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = -(-len(tokenizer) // 64) * 64
    return WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        begin_suppress_tokens=[],
        suppress_tokens=[],
        tie_word_embeddings=True,
    )


def _generation_config(tokenizer: Any, config: Any) -> Any:
    from transformers import GenerationConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_length=448,
        is_multilingual=False,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        suppress_tokens=[],
        begin_suppress_tokens=[],
        return_timestamps=False,
    )


def _random_state_dict(names_shapes: list[tuple[str, tuple[int, ...]]], seed: int) -> dict:
    import torch

    rng = np.random.Generator(np.random.PCG64(seed))
    state: dict[str, torch.Tensor] = {}
    for name, shape in sorted(names_shapes):
        if "layer_norm" in name and name.endswith("weight"):
            array = np.ones(shape, dtype=np.float32)
        elif name.endswith("bias"):
            array = np.zeros(shape, dtype=np.float32)
        else:
            array = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        state[name] = torch.from_numpy(array).contiguous()
    return state


def build_tiny_whisper(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny Whisper (config, weights, tokenizer, feature extractor) to ``out_dir``."""
    import torch
    from transformers import (
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    config = _config(tokenizer)
    with torch.device("meta"):
        skeleton = WhisperForConditionalGeneration(config)
    shapes = [(n, tuple(t.shape)) for n, t in skeleton.state_dict().items()]
    model = WhisperForConditionalGeneration(config)
    model.load_state_dict(_random_state_dict(shapes, seed), strict=False)
    model.generation_config = _generation_config(tokenizer, config)
    model.save_pretrained(out_dir)
    features = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000)
    WhisperProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out_dir)
    (out_dir / MARKER_FILE).write_text(json.dumps({"format_version": FORMAT_VERSION}))
    return out_dir
