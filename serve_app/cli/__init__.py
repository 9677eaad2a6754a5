"""Command line: ``serve-app`` / ``python -m serve_app``.

Commands:
  serve              run the service locally from a Serve config (default: the CPU profile)
  validate-config    check a Serve config against Ray's schema and build its app graph
  build-tiny-model   build the tiny offline Qwen2.5-VL into a directory
  create-user, reset-password, grant-credits, create-token, list-users
                     accounts (first admin: serve-app create-user NAME --admin)
  s3-cors            let the web page use the S3 bucket (its CORS rule for an origin)
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from serve_app.cli.accounts import register_commands as register_account_commands
from serve_app.cli.storage import register_commands as register_storage_commands
from serve_app.config import resolve_config_path

DEFAULT_SERVE_CONFIG = "configs/serve-cpu.yaml"


def load_serve_config(path: str | Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(resolve_config_path(path).read_text())
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: a Serve config must be a YAML mapping")
    return data


def absolutize_app_args(config: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make profile paths and ``data_dir`` in every app's args absolute.

    Ray builds applications in a worker process whose working directory is not the
    caller's, so relative paths must be pinned before handing the config over.
    """
    for app in config.get("applications", []):
        args = app.setdefault("args", {})
        models = args.get("models", [])
        for i, entry in enumerate(models):
            if isinstance(entry, str):
                models[i] = str(resolve_config_path(entry).resolve())
            elif isinstance(entry, dict) and isinstance(entry.get("profile"), str):
                entry["profile"] = str(resolve_config_path(entry["profile"]).resolve())
        story = args.get("story_model")
        if isinstance(story, str):
            args["story_model"] = str(resolve_config_path(story).resolve())
        elif isinstance(story, dict) and isinstance(story.get("profile"), str):
            story["profile"] = str(resolve_config_path(story["profile"]).resolve())
        settings = args.setdefault("settings", {})
        data_dir = Path(settings.get("data_dir", ".data")).expanduser()
        settings["data_dir"] = str(data_dir if data_dir.is_absolute() else (base / data_dir))
    return config


def validate_config(path: str | Path) -> list[str]:
    """Validate against Ray's ``ServeDeploySchema`` and build each app's graph."""
    from ray.serve.schema import ServeDeploySchema

    from serve_app.app import build_app

    config = absolutize_app_args(load_serve_config(path), Path.cwd())
    schema = ServeDeploySchema.model_validate(config)
    built = []
    for app in schema.applications:
        if app.import_path != "serve_app.app:build_app":
            raise SystemExit(f"unexpected import_path {app.import_path!r}")
        build_app(app.args)
        built.append(app.name)
    return built


def _cmd_serve(ns: argparse.Namespace) -> int:
    from ray.serve.scripts import cli as ray_serve_cli

    from serve_app.config import Settings
    from serve_app.engines.profile import TINY_MODEL, ModelProfile
    from serve_app.engines.tiny_model import ensure_tiny_model
    from serve_app.net.proxy_trust import proxy_trust_environment

    config = absolutize_app_args(load_serve_config(ns.config), Path.cwd())
    tiny_built: set[Path] = set()
    for app in config.get("applications", []):
        args = app["args"]
        if ns.port:
            config.setdefault("http_options", {})["port"] = ns.port
        if ns.host:
            config.setdefault("http_options", {})["host"] = ns.host
        story = args.get("story_model")
        for entry in [*args.get("models", []), *([story] if story else [])]:
            profile_path = entry if isinstance(entry, str) else entry.get("profile")
            if isinstance(profile_path, str):
                profile = ModelProfile.from_yaml(profile_path)
                target = Path(args["settings"]["data_dir"]) / "models" / "tiny-qwen2.5-vl"
                if profile.model == TINY_MODEL and target not in tiny_built:
                    tiny_built.add(target)
                    print(f"serve_app: tiny offline model at {ensure_tiny_model(target)}")
    resolved = Path(config["applications"][0]["args"]["settings"]["data_dir"]) / "serve-run.yaml"
    resolved.parent.mkdir(parents=True, exist_ok=True)
    resolved.write_text(_yaml_dump(config))
    trusted = Settings(**config["applications"][0]["args"]["settings"]).http.trusted_proxies
    # Serve's HTTP proxy (uvicorn) reads this when the cluster we start here starts it.
    os.environ.update(proxy_trust_environment(trusted))
    http = config.get("http_options", {})
    url = f"http://{http.get('host', '127.0.0.1')}:{http.get('port', 8000)}"
    print(banner(ns.config, url))
    # Deploy without Serve's own blocking loop: Ray's driver turns SIGTERM into an abort
    # with a native stack dump, so this process waits and stops Serve itself.
    ray_serve_cli.main(
        args=["run", "--non-blocking", str(resolved)], prog_name="serve", standalone_mode=False
    )
    return run_until_signalled()


def run_until_signalled() -> int:
    """Block until SIGTERM or SIGINT, then drain Serve and stop the local Ray cluster.

    Each application is deleted first: its replicas finish their in-flight requests
    (each within its deployment's ``graceful_shutdown_timeout_s``, after which Serve
    stops it anyway) while the proxies still carry the responses; then Serve and Ray
    stop. A second signal stops at once.
    """
    import ray
    from ray import serve

    received: list[int] = []
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            print("serve_app: second signal; stopping without waiting", flush=True)
            os._exit(1)
        received.append(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    print("serve_app: running; Ctrl-C or SIGTERM drains requests and stops", flush=True)
    while not stop.wait(1.0):
        pass
    name = signal.Signals(received[0]).name
    print(f"serve_app: {name}: draining in-flight requests, then stopping Ray", flush=True)
    started = time.monotonic()
    try:
        # Deleting an application first keeps the proxies up while its replicas finish
        # their requests (new ones get 404); shutting Serve down at once closes the
        # proxies' connections mid-response.
        for app_name in serve.status().applications:
            serve.delete(app_name)
        serve.shutdown()
    finally:
        ray.shutdown()
    print(f"serve_app: stopped after {time.monotonic() - started:.1f} s", flush=True)
    return 0


def _yaml_dump(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def cli_command(cwd: Path | None = None) -> str:
    """How to run this CLI from ``cwd``, as a shell would accept it.

    ``serve-app`` when it is on ``PATH`` (and is this installation's), else the script
    next to this interpreter (``.venv/bin/serve-app``), else ``python -m serve_app``.
    """
    here = (cwd or Path.cwd()).resolve()
    script = Path(sys.executable).parent / "serve-app"
    found = shutil.which("serve-app")
    if found is not None and (not script.exists() or Path(found).resolve() == script.resolve()):
        return "serve-app"
    if script.exists():
        path = script.absolute()
        return str(path.relative_to(here)) if path.is_relative_to(here) else shlex.quote(str(path))
    return f"{shlex.quote(sys.executable)} -m serve_app"


def banner(config: str, url: str, cwd: Path | None = None) -> str:
    """What ``serve`` prints before it starts: where things are, the first commands."""
    cli = cli_command(cwd)
    return (
        f"serve_app: starting Ray Serve from {config}; the API will be at {url}\n"
        f"  docs: {url}/docs   health: {url}/healthz   ready: {url}/readyz\n"
        f"  first admin and token (another terminal, same directory):\n"
        f"    {cli} create-user admin --admin && {cli} create-token admin\n"
        f"  then: curl -H 'Authorization: Bearer <token>' -F file=@photo.jpg {url}/api/analyze"
    )


def _cmd_validate(ns: argparse.Namespace) -> int:
    for name in validate_config(ns.config):
        print(f"{ns.config}: application {name!r} is valid and builds")
    return 0


def _cmd_tiny(ns: argparse.Namespace) -> int:
    from serve_app.engines.tiny_model import build_tiny_model

    print(build_tiny_model(Path(ns.out_dir), seed=ns.seed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serve-app", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service locally (Ray Serve)")
    serve.add_argument("--config", default=DEFAULT_SERVE_CONFIG, help="a Serve config YAML")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=_cmd_serve)

    validate = sub.add_parser("validate-config", help="validate a Serve config file")
    validate.add_argument("config", nargs="?", default="serve_config.yaml")
    validate.set_defaults(func=_cmd_validate)

    tiny = sub.add_parser("build-tiny-model", help="build the tiny offline Qwen2.5-VL")
    tiny.add_argument("out_dir")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=_cmd_tiny)

    register_account_commands(sub)
    register_storage_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    result: int = ns.func(ns)
    return result


if __name__ == "__main__":
    sys.exit(main())
