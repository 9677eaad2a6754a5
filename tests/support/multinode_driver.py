"""Deploy the app on a running multi-node cluster; print where each replica runs.

``python -m tests.support.multinode_driver <gcs address>`` with a JSON payload on
stdin: ``app``, ``http_port``, ``model_dir``, ``settings`` (the builder's), ``options``
(per-deployment, as :func:`serve_app.app.build_graph` takes them). Prints one JSON line:
``{"<deployment>": ["head" | "worker", ...]}`` by the custom resource of each replica's
node (Ray's actor table). Run by :mod:`tests.support.ray_nodes` in a process of its own.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def placement() -> dict[str, list[str]]:
    import ray
    from ray._private import state  # the actor table without the dashboard

    roles = {
        node["NodeID"]: "worker" if "worker_node" in node["Resources"] else "head"
        for node in ray.nodes()
        if node["Alive"]
    }
    where: dict[str, list[str]] = {}
    for info in state.actors(actor_state_name="ALIVE").values():
        name = info.get("Name") or ""
        if name.startswith("SERVE_REPLICA::"):
            deployment = name.split("#")[1]
            where.setdefault(deployment, []).append(roles[info["Address"]["NodeID"]])
    return where


def main(address: str, payload: dict[str, Any]) -> None:
    import ray
    from ray import serve

    from serve_app.app import AppArgs, ModelEntry, build_graph
    from tests.support.graphs import tiny_profile

    ray.init(address=address, log_to_driver=False)
    serve.start(
        proxy_location="HeadOnly",  # one HTTP port on this one machine
        http_options={"host": "127.0.0.1", "port": payload["http_port"]},
    )
    profile = tiny_profile(payload["model_dir"], max_new_tokens=8)
    args = AppArgs(
        models=[ModelEntry(profile=profile)],
        story_model=ModelEntry(profile=profile),
        settings=payload["settings"],
    )
    serve.run(build_graph(args, payload["options"]), name=payload["app"], route_prefix="/")
    print(json.dumps(placement()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.stdin.read()))
