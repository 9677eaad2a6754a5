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
        # A secretKeyRef straight under redisPassword (it belongs under valueFrom).
        (
            ["rayClusterConfig", "gcsFaultToleranceOptions", "redisPassword"],
            {"secretKeyRef": {"name": "serve-app-redis", "key": "password"}},
            "Additional properties",
        ),
        (["rayClusterConfig", "gcsFaultToleranceOptions"], {}, "'redisAddress' is a required"),
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
    """The pod groups' shape; what fits where is checked resource by resource below."""
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
    assert gpu_group["minReplicas"] >= len(GPU_MODELS)  # one warm GPU per model
    for name in GPU_MODELS:
        assert deployments[name]["ray_actor_options"]["num_gpus"] == 1

    # CPU-only replicas need `cpu_worker`, which only the CPU group advertises.
    assert "cpu_worker" in groups["cpu-workers"]["rayStartParams"]["resources"]
    assert "resources" not in gpu_group["rayStartParams"]
    cpu_only = {n for n, d in deployments.items() if not d["ray_actor_options"].get("num_gpus")}
    assert cpu_only == set(deployments) - GPU_MODELS
    for name in cpu_only:
        assert deployments[name]["ray_actor_options"]["resources"] == {"cpu_worker": 1}


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


def test_gcs_fault_tolerance_uses_redis_from_a_secret(manifest: dict[str, Any]) -> None:
    """The current form (gcsFaultToleranceOptions), under the operator's own rules.

    KubeRay's ValidateRayClusterSpec refuses the deprecated ``ray.io/ft-enabled`` (and
    ``ray.io/external-storage-namespace``) annotation next to the options, and a Redis
    password or address set by hand on the head (rayStartParams ``redis-password``,
    env ``REDIS_PASSWORD`` / ``RAY_REDIS_ADDRESS`` / ``REDIS_USERNAME``).
    """
    spec = manifest["spec"]["rayClusterConfig"]
    options = spec["gcsFaultToleranceOptions"]
    host, _, port = options["redisAddress"].rpartition(":")
    assert host and port.isdigit()
    password = options["redisPassword"]
    assert set(password) == {"valueFrom"}, "the password comes from a Secret, never inline"
    assert password["valueFrom"]["secretKeyRef"] == {"name": "serve-app-redis", "key": "password"}
    annotations = manifest["metadata"].get("annotations", {})
    assert "ray.io/ft-enabled" not in annotations
    assert "ray.io/external-storage-namespace" not in annotations
    head = spec["headGroupSpec"]
    assert not {"redis-password", "redis-username"} & set(head["rayStartParams"])
    [container] = head["template"]["spec"]["containers"]
    env = {e["name"] for e in container["env"]}
    assert not {"REDIS_PASSWORD", "RAY_REDIS_ADDRESS", "REDIS_USERNAME"} & env
    # The header tells operators to create that Secret.
    assert "kubectl create secret generic serve-app-redis" in MANIFEST.read_text()


def quantity(value: str | int | float) -> float:
    """A Kubernetes CPU/GPU quantity as a number (``500m`` is 0.5)."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def ray_resources_of_group(group: dict[str, Any]) -> dict[str, float]:
    """What one pod of ``group`` offers Ray, as KubeRay starts it.

    KubeRay passes ``--num-cpus`` / ``--num-gpus`` from the container's limits unless
    rayStartParams sets them, and ``rayStartParams.resources`` (a JSON object, quoted
    for the shell) as custom resources.
    """
    params = group["rayStartParams"]
    [container] = group["template"]["spec"]["containers"]
    limits = container.get("resources", {}).get("limits", {})
    offered = {
        "CPU": quantity(params.get("num-cpus", limits.get("cpu", 0))),
        "GPU": quantity(params.get("num-gpus", limits.get("nvidia.com/gpu", 0))),
    }
    if "resources" in params:
        custom = json.loads(json.loads(params["resources"]))
        offered.update({name: float(amount) for name, amount in custom.items()})
    return offered


def ray_resources_of_deployment(deployment: dict[str, Any]) -> dict[str, float]:
    """What one replica asks for (Serve's default is one CPU, no GPU)."""
    options = deployment.get("ray_actor_options", {})
    wanted = {"CPU": float(options.get("num_cpus", 1)), "GPU": float(options.get("num_gpus", 0))}
    wanted.update({k: float(v) for k, v in options.get("resources", {}).items()})
    return {name: amount for name, amount in wanted.items() if amount > 0}


def placements(manifest: dict[str, Any], config: dict[str, Any]) -> dict[str, set[str]]:
    """For each deployment, the pod groups (``head`` included) one replica fits on."""
    spec = manifest["spec"]["rayClusterConfig"]
    groups = {"head": {**spec["headGroupSpec"], "groupName": "head"}, **groups_of(manifest)}
    offered = {name: ray_resources_of_group(group) for name, group in groups.items()}
    return {
        name: {
            group
            for group, has in offered.items()
            if all(has.get(r, 0) >= amount for r, amount in ray_resources_of_deployment(d).items())
        }
        for name, d in deployments_of(config).items()
    }


def test_every_deployment_fits_exactly_its_stage_group(
    manifest: dict[str, Any], serve_config: dict[str, Any]
) -> None:
    """GPU models only on gpu-workers, the CPU stages only on cpu-workers, nothing on the head."""
    expected = {name: {"gpu-workers"} for name in GPU_MODELS}
    expected.update({n: {"cpu-workers"} for n in set(deployments_of(serve_config)) - GPU_MODELS})
    assert placements(manifest, serve_config) == expected


def test_each_group_can_hold_its_deployments_at_max_replicas(
    manifest: dict[str, Any], serve_config: dict[str, Any]
) -> None:
    """Every Ray resource, summed over max_replicas, fits the group at maxReplicas pods."""
    deployments = deployments_of(serve_config)
    groups = groups_of(manifest)
    for group_name, members in (("gpu-workers", GPU_MODELS), ("cpu-workers", None)):
        names = members or set(deployments) - GPU_MODELS
        group = groups[group_name]
        per_pod = ray_resources_of_group(group)
        needed: dict[str, float] = {}
        for name in names:
            replicas = deployments[name]["autoscaling_config"]["max_replicas"]
            for resource, amount in ray_resources_of_deployment(deployments[name]).items():
                needed[resource] = needed.get(resource, 0) + amount * replicas
        for resource, amount in needed.items():
            assert group["maxReplicas"] * per_pod.get(resource, 0) >= amount, (group_name, resource)
        # Autoscaling bounds the operator accepts: min <= replicas <= max.
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


@pytest.mark.parametrize(
    ("deployment", "options", "fits"),
    [
        ("FrameExtractor", {"num_cpus": 2}, {"cpu-workers", "gpu-workers"}),  # no cpu_worker
        ("Detector", {"num_cpus": 1, "num_gpus": 1, "resources": {"cpu_worker": 1}}, set()),
        ("StoryWriter", {"num_cpus": 16, "num_gpus": 1}, set()),  # more CPUs than a GPU pod
        ("Ingress", {"num_cpus": 0, "resources": {"cpu_stage": 1}}, set()),  # no such resource
    ],
)
def test_placement_check_catches_mistakes(
    manifest: dict[str, Any],
    serve_config: dict[str, Any],
    deployment: str,
    options: dict[str, Any],
    fits: set[str],
) -> None:
    broken = copy.deepcopy(serve_config)
    deployments_of(broken)[deployment]["ray_actor_options"] = options
    assert placements(manifest, broken)[deployment] == fits
