from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
import torch

from serve_app.engines import tiny_model
from serve_app.engines.tiny_model import MARKER_FILE, build_tiny_model, ensure_tiny_model

EXPECTED_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    "chat_template.jinja",
}


def digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != MARKER_FILE
    }


def test_files_and_size(tiny_model_dir: Path) -> None:
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert names >= EXPECTED_FILES
    size = sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    assert 0.5e6 < size < 2.5e6


def test_build_is_byte_for_byte_deterministic(tmp_path: Path, tiny_model_dir: Path) -> None:
    again = digests(build_tiny_model(tmp_path / "again", seed=0))
    assert again == digests(tiny_model_dir)
    other = digests(build_tiny_model(tmp_path / "other", seed=1))
    assert other["model.safetensors"] != again["model.safetensors"]
    assert other["tokenizer.json"] == again["tokenizer.json"]


def test_loads_with_the_real_qwen2_5_vl_classes(tiny_model_dir: Path) -> None:
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    processor = Qwen2_5_VLProcessor.from_pretrained(tiny_model_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32)
    text, vision = model.config.text_config, model.config.vision_config
    assert text.hidden_size // text.num_attention_heads == 64
    assert sum(text.rope_parameters["mrope_section"]) == 32
    assert (text.num_hidden_layers, vision.depth) == (2, 2)
    assert (vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size) == (14, 2, 2)
    tokenizer = processor.tokenizer
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert model.config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert model.config.text_config.vocab_size >= len(tokenizer)
    assert processor.image_processor.size["longest_edge"] == tiny_model.TINY_IMAGE_MAX_PIXELS


def test_tokenizer_is_byte_level_with_qwen_specials(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in tiny_model.SPECIAL_TOKENS]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # Qwen's order, contiguous
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    text = "Describe this image: ภาพนี้ 🙂 <b>x</b>"
    assert tokenizer.decode(tokenizer(text).input_ids) == text
    encoded = tokenizer("<|im_start|>user\n<|vision_start|>").input_ids
    assert encoded[0] == ids[1] and encoded[-1] == ids[9]  # specials are single tokens


def test_chat_template_renders_vision_placeholders(tiny_model_dir: Path) -> None:
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Hi"}],
        }
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        "<|vision_start|><|video_pad|><|vision_end|>Hi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_loads_and_generates_fast(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForImageTextToText

    start = time.perf_counter()
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    load_s = time.perf_counter() - start
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)  # warm up
        start = time.perf_counter()
        out = model.generate(input_ids=ids, max_new_tokens=32, min_new_tokens=32, do_sample=False)
    generate_s = time.perf_counter() - start
    assert out.shape[1] == 36
    assert load_s < 3 and generate_s < 3  # typically ~0.1 s each; generous for slow CI


def test_ensure_reuses_a_complete_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = ensure_tiny_model(tmp_path / "tiny")
    before = digests(target)
    monkeypatch.setattr(tiny_model, "build_tiny_model", pytest.fail)
    assert ensure_tiny_model(tmp_path / "tiny") == target
    assert digests(target) == before


def test_ensure_replaces_stale_directories(tmp_path: Path) -> None:
    target = tmp_path / "tiny"
    target.mkdir()
    (target / "junk.bin").write_bytes(b"partial")
    ensure_tiny_model(target)
    assert not (target / "junk.bin").exists()
    assert (target / "model.safetensors").exists()
    weights = (target / "model.safetensors").read_bytes()
    ensure_tiny_model(target, seed=3)  # a different seed is a different model
    assert (target / "model.safetensors").read_bytes() != weights


def test_ensure_builds_once_under_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real_build = tiny_model.build_tiny_model

    def counting_build(out_dir: Path, seed: int = 0) -> Path:
        calls.append(out_dir)
        time.sleep(0.2)  # widen the race window
        return real_build(out_dir, seed=seed)

    monkeypatch.setattr(tiny_model, "build_tiny_model", counting_build)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_tiny_model(tmp_path / "tiny")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert results == [tmp_path / "tiny"] * 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tiny.lock", "tiny"]
