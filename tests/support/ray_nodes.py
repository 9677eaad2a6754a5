"""A Ray cluster of several raylets on this machine, and a driver process to deploy on it.

Each node is a ``ray start --block`` subprocess of the test: stopping it by its pid
(SIGTERM) makes that command kill the processes it started, so no other Ray cluster
(the session's, another test run's) is touched — never ``ray stop``. Ports are chosen
free; nodes differ by their custom resources and by their environment (e.g. a data
directory of their own through ``SERVE_APP_NODE_DATA_DIR``).

The pytest process may already be connected to the session's cluster
(``tests/conftest.py::ray_serve``) and a process joins one cluster at a time, so code
for this cluster runs in :func:`run_driver`'s subprocess: Serve's controller is a
detached actor, so what it deploys keeps running after the driver exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "block forever"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RayNode:
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while READY_LINE not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class RayNodes:
    """The head's GCS address, the temp dir every process of this cluster uses, its nodes."""

    temp_dir: Path
    env: dict[str, str]
    address: str = ""
    nodes: list[RayNode] = field(default_factory=list)

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> RayNode:
        log = self.temp_dir / f"{name}.log"
        command = [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--block",
            "--disable-usage-stats",
            "--temp-dir",
            str(self.temp_dir),
            "--dashboard-agent-listen-port",
            str(free_port()),
            "--dashboard-agent-grpc-port",
            str(free_port()),
            "--metrics-export-port",
            str(free_port()),
            "--runtime-env-agent-port",
            str(free_port()),
            *args,
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**self.env, **env}
            )
        node = RayNode(process, log)
        self.nodes.append(node)
        return node

    def start_head(
        self, num_cpus: float, resources: dict[str, float], env: dict[str, str], memory: int
    ) -> RayNode:
        port = free_port()
        node = self._start(
            "head",
            [
                "--head",
                "--port",
                str(port),
                "--ray-client-server-port",
                str(free_port()),
                "--include-dashboard",
                "false",
                "--num-cpus",
                str(num_cpus),
                "--resources",
                json.dumps(resources),
                "--object-store-memory",
                str(memory),
            ],
            env,
        )
        self.address = f"127.0.0.1:{port}"
        return node

    def start_worker(
        self, num_cpus: float, resources: dict[str, float], env: dict[str, str], memory: int
    ) -> RayNode:
        return self._start(
            f"worker{len(self.nodes)}",
            [
                "--address",
                self.address,
                "--num-cpus",
                str(num_cpus),
                "--resources",
                json.dumps(resources),
                "--object-store-memory",
                str(memory),
            ],
            env,
        )

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def run_driver(self, module: str, payload: dict[str, Any], timeout_s: float) -> Any:
        """``python -m module`` connected to this cluster: ``payload`` in, JSON out."""
        done = subprocess.run(
            [sys.executable, "-m", module, self.address],
            input=json.dumps(payload).encode(),
            capture_output=True,
            cwd=ROOT,
            env={**self.env, "PYTHONPATH": str(ROOT)},
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"driver failed:\n{done.stderr.decode()[-4000:]}")
        return json.loads(done.stdout.decode().strip().splitlines()[-1])


def cluster_environment(temp_dir: Path) -> dict[str, str]:
    """This process's environment for the cluster's processes, Ray pointed at ``temp_dir``."""
    env = dict(os.environ)
    env["RAY_TMPDIR"] = str(temp_dir)
    # One auth mode for every process of the cluster: a token file in ~/.ray (left by
    # another run) must not make some of them expect a token the others lack.
    env["RAY_AUTH_MODE"] = "disabled"
    # A stopped test node goes at once (no drain wait for its Serve proxy and replicas).
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    # A loaded 2-core machine can take over Ray's default minute to register a raylet.
    env["RAY_raylet_start_wait_time_s"] = "150"
    return env
