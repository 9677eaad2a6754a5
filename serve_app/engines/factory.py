"""Build the engine a :class:`ModelProfile` asks for.

Backend modules are imported only when chosen, so a CPU node never imports vLLM and
an OpenAI-only node never loads torch models.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from serve_app.engines.base import Engine
from serve_app.engines.profile import TINY_MODEL, ModelProfile
from serve_app.storage.node_dir import node_data_dir

TINY_MODEL_DIR = Path("models") / "tiny-qwen2.5-vl"


def resolve_model_source(profile: ModelProfile, data_dir: Path) -> str:
    """The hub id or local directory to load; builds the tiny model on first use
    (in this node's data directory, :func:`~serve_app.storage.node_dir.node_data_dir`)."""
    if profile.model == TINY_MODEL:
        from serve_app.engines.tiny_model import ensure_tiny_model

        return str(ensure_tiny_model(node_data_dir(Path(data_dir)) / TINY_MODEL_DIR))
    return profile.model


def build_engine(profile: ModelProfile, data_dir: Path) -> Engine:
    """A not-yet-started engine for ``profile`` (call ``await engine.start()``)."""
    if profile.backend == "transformers":
        from serve_app.engines.transformers_engine import TransformersEngine

        return TransformersEngine(profile, resolve_model_source(profile, data_dir))
    if profile.backend == "vllm":
        from serve_app.engines.vllm_engine import VLLMEngine

        return VLLMEngine(profile, resolve_model_source(profile, data_dir))
    if profile.backend == "openai":
        from serve_app.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(profile)
    raise ValueError(f"unknown backend {profile.backend!r}")


#: Makes a not-yet-started engine. Model deployments take one instead of an engine:
#: an engine holds locks, a device and loaded weights, so it is built where it runs
#: (in the replica), while a factory pickles to any node.
EngineFactory = Callable[[], Engine]


def engine_factory(profile: ModelProfile, data_dir: Path) -> EngineFactory:
    """A picklable :data:`EngineFactory` for ``profile`` (:func:`build_engine` in the replica)."""
    return functools.partial(build_engine, profile, Path(data_dir))
