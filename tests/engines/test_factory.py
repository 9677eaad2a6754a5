from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.engines.factory import build_engine, resolve_model_source
from serve_app.engines.openai_engine import OpenAIEngine
from serve_app.engines.profile import TINY_MODEL, ModelProfile
from serve_app.engines.transformers_engine import TransformersEngine
from serve_app.engines.vllm_engine import VLLMEngine

from .conftest import PROJECT_ROOT

PROFILES = sorted((PROJECT_ROOT / "configs" / "models").glob("*.yaml"))
ENGINE_CLASSES = {"transformers": TransformersEngine, "vllm": VLLMEngine, "openai": OpenAIEngine}


def test_the_shipped_profiles_exist() -> None:
    assert {p.name for p in PROFILES} >= {
        "tiny-qwen2.5-vl.yaml",
        "qwen2.5-vl-7b-vllm.yaml",
        "qwen2.5-vl-openai.yaml",
        "qwen2.5-7b-story-vllm.yaml",
    }


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_profile_loads_and_builds_an_engine(path: Path, tmp_path: Path) -> None:
    profile = ModelProfile.from_yaml(path)
    engine = build_engine(profile, tmp_path)
    assert isinstance(engine, ENGINE_CLASSES[profile.backend])
    if profile.model != TINY_MODEL:
        assert not list(tmp_path.iterdir())  # hub models are not touched until start()


def test_shipped_profiles_say_what_they_serve() -> None:
    by_name = {p.name: ModelProfile.from_yaml(p) for p in PROFILES}
    tiny = by_name["tiny-qwen2.5-vl.yaml"]
    assert (tiny.backend, tiny.device, tiny.torch_threads, tiny.max_new_tokens) == (
        "transformers",
        "cpu",
        1,
        32,
    )
    vl = by_name["qwen2.5-vl-7b-vllm.yaml"]
    assert vl.vllm_engine_args["limit_mm_per_prompt"] == {"image": 8, "video": 1}
    assert vl.max_model_len == 32768
    story = by_name["qwen2.5-7b-story-vllm.yaml"]
    assert (story.multimodal, story.model) == (False, "Qwen/Qwen2.5-7B-Instruct")
    remote = by_name["qwen2.5-vl-openai.yaml"]
    assert remote.openai.base_url == "http://127.0.0.1:8001/v1"


def test_tiny_profile_resolves_to_a_built_model(
    tiny_profile: ModelProfile, tmp_path: Path, tiny_model_dir: Path
) -> None:
    source = Path(resolve_model_source(tiny_profile, tmp_path))
    assert source == tmp_path / "models" / "tiny-qwen2.5-vl"
    assert (source / "model.safetensors").read_bytes() == (
        tiny_model_dir / "model.safetensors"
    ).read_bytes()
    engine = build_engine(tiny_profile, tmp_path)
    assert isinstance(engine, TransformersEngine)


def test_hub_ids_pass_through(tmp_path: Path) -> None:
    profile = ModelProfile(name="x", backend="vllm", model="Qwen/Qwen2.5-VL-7B-Instruct")
    assert resolve_model_source(profile, tmp_path) == "Qwen/Qwen2.5-VL-7B-Instruct"
