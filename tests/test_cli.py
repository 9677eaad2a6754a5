"""The CLI: config validation against Ray's schema, path pinning, tiny model build."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_app.cli import absolutize_app_args, load_serve_config, main, validate_config
from serve_app.config import resolve_config_path
from serve_app.engines.profile import ModelProfile


@pytest.mark.parametrize(
    "config", ["serve_config.yaml", "configs/serve-cpu.yaml", "configs/serve-multinode.yaml"]
)
def test_shipped_serve_configs_validate_and_build(config: str) -> None:
    assert validate_config(config) == ["serve_app"]


def test_multinode_profile_shares_no_disk() -> None:
    """Job blobs in S3 (uploads, results); the Ingress pinned where its chunks live."""
    [app] = load_serve_config("configs/serve-multinode.yaml")["applications"]
    assert app["args"]["settings"]["jobs"]["blob_store"] == "s3"
    assert "database_url" not in app["args"]["settings"]  # DATABASE_URL of the nodes
    deployments = {d["name"]: d for d in app["deployments"]}
    ingress = deployments["Ingress"]
    assert ingress["num_replicas"] == 1
    assert "ingress_node" in ingress["ray_actor_options"]["resources"]


def test_production_config_sets_every_deployment_independently() -> None:
    config = load_serve_config("serve_config.yaml")
    deployments = {d["name"]: d for d in config["applications"][0]["deployments"]}
    assert set(deployments) == {
        "Ingress",
        "FrameExtractor",
        "VisionLanguageModel",
        "StoryWriter",
        "Detector",
        "JobRunner",
    }
    assert deployments["VisionLanguageModel"]["ray_actor_options"]["num_gpus"] == 1
    assert deployments["StoryWriter"]["ray_actor_options"]["num_gpus"] == 1
    assert deployments["StoryWriter"]["max_queued_requests"] > 0
    for deployment in deployments.values():
        assert "autoscaling_config" in deployment
        assert deployment["max_ongoing_requests"] > 0


def test_invalid_serve_config_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "applications:\n  - name: x\n    import_path: serve_app.app:build_app\n"
        "    deployments:\n      - name: Ingress\n        max_ongoing_requests: -1\n"
    )
    with pytest.raises(ValueError):
        validate_config(bad)


def test_production_story_model_is_a_text_model_on_vllm() -> None:
    args = load_serve_config("serve_config.yaml")["applications"][0]["args"]
    profile = ModelProfile.from_yaml(resolve_config_path(args["story_model"]["profile"]))
    assert profile.backend == "vllm" and not profile.multimodal
    openai = ModelProfile.from_yaml(
        resolve_config_path("configs/models/qwen2.5-7b-story-openai.yaml")
    )
    assert openai.backend == "openai" and not openai.multimodal


def test_relative_paths_are_pinned(tmp_path: Path) -> None:
    config = absolutize_app_args(load_serve_config("configs/serve-cpu.yaml"), tmp_path)
    args = config["applications"][0]["args"]
    assert Path(args["models"][0]["profile"]).is_absolute()
    assert Path(args["story_model"]["profile"]).is_absolute()
    assert args["settings"]["data_dir"] == str(tmp_path / ".data")


def test_build_tiny_model_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build-tiny-model", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "config.json").exists()


def test_banner_commands_run_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The banner's account commands work when pasted into a shell (no PATH needed)."""
    import os
    import re
    import subprocess

    from serve_app.cli import banner

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a shell where the venv is not activated
    text = banner("configs/serve-cpu.yaml", "http://127.0.0.1:8000", cwd=tmp_path)
    line = next(x for x in text.splitlines() if "create-user" in x).strip()
    first = line.split(" && ")[0]
    assert re.search(r"create-user admin --admin$", first)
    command = first.replace("create-user admin --admin", "create-user --help")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "create-user" in done.stdout
