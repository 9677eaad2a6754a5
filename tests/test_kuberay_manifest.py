"""``configs/kuberay/rayservice.yaml``: a valid RayService whose Serve config builds.

The manifest is validated without kubectl against the RayService CRD's schema
(``tests/fixtures/kuberay``), its embedded Kubernetes types against the strict core/v1
definitions of ``kubernetes-validate``; unknown fields are errors, as with
``kubectl apply --validate=strict``.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from serve_app.config import PROJECT_ROOT

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")
pytest.importorskip("kubernetes_validate")

K8S_VERSION = "1.33.0"
MANIFEST = PROJECT_ROOT / "configs" / "kuberay" / "rayservice.yaml"
SCHEMA = Path(__file__).parent / "fixtures" / "kuberay" / "rayservice-v1.schema.yaml"
GPU_MODELS = {"VisionLanguageModel", "StoryWriter"}


def strict(schema: Any) -> Any:
    """Forbid fields the schema does not name (CRDs prune them; strict kubectl refuses)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def validator() -> Any:
    folder = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    versions = sorted(p.name for p in folder.iterdir() if p.name.endswith("-local-strict"))
    wanted = f"v{K8S_VERSION}-local-strict"
    chosen = wanted if wanted in versions else versions[-1]  # newer packages drop old ones
    k8s = json.loads((folder / chosen / "_definitions.json").read_text())
    registry = referencing.Registry().with_resource(
        k8s["$id"], referencing.Resource.from_contents(k8s)
    )
    schema = strict(yaml.safe_load(SCHEMA.read_text()))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def serve_config(manifest: dict[str, Any]) -> dict[str, Any]:
    config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    assert isinstance(config, dict)
    return config


def errors_of(validator: Any, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def deployments_of(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [app] = config["applications"]
    return {d["name"]: d for d in app["deployments"]}


def groups_of(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["groupName"]: g for g in manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]}


def test_manifest_is_a_valid_rayservice(validator: Any, manifest: dict[str, Any]) -> None:
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == "RayService"
    assert errors_of(validator, manifest) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["rayClusterConfig", "workerGroupSpec"], [], "Additional properties"),
        (["rayClusterConfig", "workerGroupSpecs", 0, "maxReplicas"], "six", "not of type"),
        (["rayClusterConfig", "autoscalerOptions", "upscalingMode"], "Fast", "is not one of"),
        (["upgradeStrategy", "type"], "BlueGreen", "is not one of"),
        (
            [
                "rayClusterConfig",
                "workerGroupSpecs",
                1,
                "template",
                "spec",
                "containers",
                0,
                "resource",
            ],
            {},
            "Additional properties",
        ),
        (
            ["rayClusterConfig", "headGroupSpec", "template", "spec", "tolerations"],
            [{"key": "nvidia.com/gpu", "operator": 3}],
            "is not of type",
        ),
    ],
)
def test_validation_catches_mistakes(
    validator: Any, manifest: dict[str, Any], path: list[Any], value: Any, expected: str
) -> None:
    broken = copy.deepcopy(manifest)
    target = broken["spec"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    errors = errors_of(validator, broken)
    assert errors and any(expected in e for e in errors), errors


def test_missing_required_fields_are_caught(validator: Any, manifest: dict[str, Any]) -> None:
    broken = copy.deepcopy(manifest)
    del broken["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["groupName"]
    del broken["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"]
    errors = errors_of(validator, broken)
    assert any("'groupName' is a required property" in e for e in errors), errors
    assert any("'containers' is a required property" in e for e in errors), errors


def test_serve_config_validates_and_builds(serve_config: dict[str, Any]) -> None:
    from ray.serve._private.build_app import build_app as build_deployments
    from ray.serve.schema import ServeDeploySchema

    from serve_app.app import build_app

    schema = ServeDeploySchema.model_validate(serve_config)
    [app] = schema.applications
    assert app.import_path == "serve_app.app:build_app"
    built = build_deployments(build_app(app.args), name=app.name)
    assert {d.name for d in built.deployments} == set(deployments_of(serve_config))


def test_serve_config_mirrors_serve_config_yaml(serve_config: dict[str, Any]) -> None:
    shipped = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())
    [ours], [theirs] = serve_config["applications"], shipped["applications"]
    assert ours["args"] == theirs["args"]
    mine, reference = deployments_of(serve_config), deployments_of(shipped)
    assert set(mine) == set(reference)
    for name, deployment in reference.items():
        for knob in ("max_ongoing_requests", "max_queued_requests"):
            assert mine[name][knob] == deployment[knob], (name, knob)
        gpus = deployment["ray_actor_options"].get("num_gpus", 0)
        assert mine[name]["ray_actor_options"].get("num_gpus", 0) == gpus, name
        assert mine[name]["autoscaling_config"]["max_replicas"] >= 1


def test_groups_fit_the_deployments(manifest: dict[str, Any], serve_config: dict) -> None:
    spec = manifest["spec"]["rayClusterConfig"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = groups_of(manifest)
    assert set(groups) == {"cpu-workers", "gpu-workers"}
    deployments = deployments_of(serve_config)

    gpu_group = groups["gpu-workers"]
    [gpu_container] = gpu_group["template"]["spec"]["containers"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu_group["template"]["spec"]["tolerations"]
    gpu_replicas = sum(deployments[n]["autoscaling_config"]["max_replicas"] for n in GPU_MODELS)
    assert gpu_group["maxReplicas"] >= gpu_replicas
    assert gpu_group["minReplicas"] >= len(GPU_MODELS)
    for name in GPU_MODELS:
        options = deployments[name]["ray_actor_options"]
        assert options["num_gpus"] == 1
        assert options["num_cpus"] <= int(gpu_container["resources"]["limits"]["cpu"])

    # CPU-only replicas need `cpu_worker`, which only the CPU group advertises.
    cpu_group = groups["cpu-workers"]
    assert "cpu_worker" in cpu_group["rayStartParams"]["resources"]
    assert "resources" not in gpu_group["rayStartParams"]
    [cpu_container] = cpu_group["template"]["spec"]["containers"]
    cpus_per_pod = int(cpu_container["resources"]["limits"]["cpu"])
    needed = 0
    cpu_only = {n for n, d in deployments.items() if not d["ray_actor_options"].get("num_gpus")}
    assert cpu_only == set(deployments) - GPU_MODELS
    for name in cpu_only:
        options = deployments[name]["ray_actor_options"]
        assert options["resources"] == {"cpu_worker": 1}
        needed += options["num_cpus"] * deployments[name]["autoscaling_config"]["max_replicas"]
    assert cpu_group["maxReplicas"] * cpus_per_pod >= needed


def test_secrets_come_from_kubernetes_secrets(manifest: dict[str, Any]) -> None:
    spec = manifest["spec"]["rayClusterConfig"]
    pods = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for pod in pods:
        [container] = pod["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "serve-app-db"
        session = env["SERVE_APP_ACCOUNTS__SESSION_SECRET"]["valueFrom"]["secretKeyRef"]
        assert session["name"] == "serve-app-secrets"
        assert {"secretRef": {"name": "serve-app-blob"}} in container["envFrom"]
        assert not any("value" in e and "SECRET" in name for name, e in env.items())


def test_jobs_keep_their_blobs_in_s3(serve_config: dict[str, Any]) -> None:
    """Pods share no disk for job data: uploads and results live in the bucket."""
    [app] = serve_config["applications"]
    assert app["args"]["settings"]["jobs"]["blob_store"] == "s3"


def malloc_tuning_of_serve_sh() -> dict[str, str]:
    """``export MALLOC_X="${MALLOC_X:-value}"`` defaults of scripts/serve.sh."""
    text = (PROJECT_ROOT / "scripts" / "serve.sh").read_text()
    found = re.findall(r'export (MALLOC_\w+)="\$\{\1:-([^}]*)\}"', text)
    return dict(found)


def test_malloc_tuning_matches_serve_sh_and_serve_config(
    manifest: dict[str, Any], serve_config: dict[str, Any]
) -> None:
    expected = malloc_tuning_of_serve_sh()
    assert set(expected) == {"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}
    shipped = yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text())
    for config in (shipped, serve_config):
        [app] = config["applications"]
        env_vars = app["runtime_env"]["env_vars"]
        assert {k: v for k, v in env_vars.items() if k.startswith("MALLOC_")} == expected
    # Every pod's container too: `ray start` (raylet, HTTP proxy) reads it at startup.
    spec = manifest["spec"]["rayClusterConfig"]
    for pod in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        [container] = pod["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {k: v for k, v in env.items() if k.startswith("MALLOC_")} == expected
