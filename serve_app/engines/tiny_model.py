"""A tiny random-weight Qwen2.5-VL, built offline and deterministically.

Tests and the CPU default profile use it: it is the real architecture
(``Qwen2_5_VLForConditionalGeneration``) with a byte-level BPE tokenizer, Qwen's special
tokens, image and video processors with small pixel limits and Qwen2.5-VL's chat
template, so every code path (processor, chat template, visual tokens, M-RoPE, generate)
runs for real. Its text is meaningless. Weights are drawn from numpy's PCG64 under a
fixed seed and stored as bfloat16 safetensors (~1 MB), so the build is byte-for-byte
reproducible for a given seed and library versions.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when the layout of the built model changes, so stale builds are replaced.
FORMAT_VERSION = 1
MARKER_FILE = ".tiny-model-complete.json"

#: Qwen2.5-VL's special tokens, in Qwen's order (ids follow the trained vocabulary).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)

#: Qwen2-VL / Qwen2.5-VL chat template (as shipped with Qwen/Qwen2.5-VL-*-Instruct).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenizer split (same regex as transformers' Qwen2Tokenizer).
_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_BPE_VOCAB_SIZE = 1024
#: Small pixel limits: at most 16 visual tokens per image, 16 per frame pair.
TINY_IMAGE_MIN_PIXELS = 4 * 28 * 28
TINY_IMAGE_MAX_PIXELS = 16 * 28 * 28
TINY_VIDEO_MIN_PIXELS = 4 * 28 * 28
TINY_VIDEO_MAX_PIXELS = 16 * 28 * 28

_CORPUS = """\
A photo of a person standing in a park on a sunny day with green trees behind them.
The image shows a cat sleeping on a red sofa next to a window.
Two people walk along the beach at sunset while waves roll onto the sand.
In the video a car drives down a busy street, then turns left at the corner.
A man in a blue shirt is riding a bicycle past a row of shops.
A woman holds a cup of coffee and smiles at the camera.
The astronaut wears a white suit and stands in front of an American flag.
There is a small dog running across the grass, chasing a yellow ball.
The kitchen has a wooden table, four chairs and a bowl of fresh fruit.
Snow covers the mountains and the sky is clear and bright blue.
Children are playing football in the school yard after lunch.
An old building with tall windows stands beside the river.
The camera pans from left to right, then zooms in on a face.
At the start of the clip the room is dark; later the lights turn on.
Once upon a time, a curious girl found a map in her grandmother's attic.
She followed the map through the forest and across a narrow bridge.
At the end of the path she discovered a garden full of glowing flowers.
The boy laughed, the bird sang, and the whole village came to see.
Describe this image. Describe the video. Write a short story about the scene.
Translate the story into Thai. What is happening? Who is in the picture?
How many people are there? What colour is the car? Where was this taken?
One, two, three, four, five, six, seven, eight, nine, ten, 2024, 1080p, 30 fps.
Objects: person, face, bicycle, car, truck, bus, dog, cat, bird, horse, tree, house.
Colours: red, orange, yellow, green, blue, purple, black, white, grey, brown, pink.
Time: morning, afternoon, evening, night, today, yesterday, seconds, minutes, frames.
สวัสดีครับ ภาพนี้แสดงคนกำลังเดินในสวนสาธารณะ แมวนอนหลับอยู่บนโซฟา
เรื่องสั้น: กาลครั้งหนึ่งมีเด็กผู้หญิงคนหนึ่งเดินทางเข้าไปในป่า
system user assistant: You are a helpful assistant. You are a storyteller.
def main(): print("hello world") # code, json {"key": [1, 2, 3]}
"""


def _corpus() -> list[str]:
    lines = _CORPUS.splitlines()
    # Lower- and upper-case variants enlarge the set of words without randomness.
    return lines + [line.lower() for line in lines] + [line.upper() for line in lines]


def _train_tokenizer() -> Any:
    """Train a Qwen2-style byte-level BPE (returns a transformers ``Qwen2Tokenizer``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.trainers import BpeTrainer
    from transformers import AddedToken, Qwen2Tokenizer

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    vocab = dict(model["vocab"])
    # Special tokens get the ids right after the trained vocabulary, in Qwen's order.
    vocab.update({t: len(vocab) + i for i, t in enumerate(SPECIAL_TOKENS)})
    settings: dict[str, Any] = {
        "vocab": vocab,
        "merges": merges,
        "unk_token": None,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 32768,
        "split_special_tokens": False,
        "clean_up_tokenization_spaces": False,
    }
    qwen = Qwen2Tokenizer(**settings)
    qwen.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    qwen.chat_template = QWEN2_VL_CHAT_TEMPLATE
    return qwen


def _config(tokenizer: Any) -> Any:
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = -(-len(tokenizer) // 64) * 64
    text_config = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 1,  # head_dim 64, as vLLM's attention kernels expect
        "num_key_value_heads": 1,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "use_sliding_window": False,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [8, 12, 12],  # sums to head_dim / 2
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision_config = {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 1,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "tokens_per_second": 2,
        "window_size": 112,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
        architectures=["Qwen2_5_VLForConditionalGeneration"],
        dtype="bfloat16",
    )


def _random_state_dict(names_shapes: list[tuple[str, tuple[int, ...]]], seed: int) -> dict:
    """Portable random weights: norms are ones, everything else N(0, 0.02) from PCG64."""
    import torch

    rng = np.random.Generator(np.random.PCG64(seed))
    state: dict[str, torch.Tensor] = {}
    for name, shape in sorted(names_shapes):
        if "norm" in name or "ln_q" in name:
            array = np.ones(shape, dtype=np.float32)
        else:
            array = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        state[name] = torch.from_numpy(array).to(torch.bfloat16).contiguous()
    return state


def _processors(tokenizer: Any) -> Any:
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": TINY_IMAGE_MIN_PIXELS, "longest_edge": TINY_IMAGE_MAX_PIXELS},
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )
    video_processor = Qwen2VLVideoProcessor(
        size={"shortest_edge": TINY_VIDEO_MIN_PIXELS, "longest_edge": TINY_VIDEO_MAX_PIXELS},
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        do_sample_frames=False,
        cap_pixels_per_frame=False,
    )
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )


def build_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny Qwen2.5-VL (config, weights, tokenizer, processors) into ``out_dir``."""
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    config = _config(tokenizer)
    with torch.device("meta"):
        skeleton = Qwen2_5_VLForConditionalGeneration(config)
    shapes = [(n, tuple(t.shape)) for n, t in skeleton.state_dict().items()]
    state = _random_state_dict(shapes, seed)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out_dir)
    eos = [config.text_config.eos_token_id, config.text_config.bos_token_id]
    GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=eos,
        pad_token_id=config.text_config.pad_token_id,
        do_sample=False,
    ).save_pretrained(out_dir)
    _processors(tokenizer).save_pretrained(out_dir)
    return out_dir


def _marker(seed: int) -> dict[str, int]:
    return {"format_version": FORMAT_VERSION, "seed": seed}


def _is_complete(out_dir: Path, seed: int) -> bool:
    try:
        return json.loads((out_dir / MARKER_FILE).read_text()) == _marker(seed)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout_s
        locked = False
        while not locked:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"timed out waiting for {path.name}") from None
                time.sleep(0.05)
            except OSError:  # no flock here (some network file systems): rely on rename
                break
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _make_readable(directory: Path) -> None:
    # mkdtemp and safetensors create owner-only modes; other users (replicas) must read.
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def ensure_tiny_model(out_dir: Path, seed: int = 0, timeout_s: float = 300.0) -> Path:
    """Return ``out_dir`` holding a complete tiny model, building it once if needed.

    Safe when several processes (Ray replicas) call it at once: builds go to a temporary
    sibling directory that is renamed into place atomically, under a file lock, and a
    completion marker tells a finished build from a stale or foreign directory.
    """
    out_dir = Path(out_dir)
    if _is_complete(out_dir, seed):
        return out_dir
    parent = out_dir.parent
    with _file_lock(parent / f".{out_dir.name}.lock", timeout_s):
        if _is_complete(out_dir, seed):
            return out_dir
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=parent))
        try:
            build_tiny_model(tmp, seed=seed)
            (tmp / MARKER_FILE).write_text(json.dumps(_marker(seed)))
            _make_readable(tmp)
            if out_dir.exists() and not _is_complete(out_dir, seed):
                stale = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.stale-", dir=parent))
                os.replace(out_dir, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            try:
                os.replace(tmp, out_dir)
            except OSError:  # without a lock, another process may have won the race
                if not _is_complete(out_dir, seed):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
