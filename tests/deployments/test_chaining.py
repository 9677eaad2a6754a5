"""One stage's result passed on to the next by reference (handles.produced).

The Ingress waits until the FrameExtractor's frames exist and then calls the model
with their reference: the array must never be fetched into the caller. A result whose
unpickling writes the process id to a file shows where it was deserialized.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serve_app.deployments.handles import produced

pytestmark = pytest.mark.ray


class Tracked:
    """A payload that notes every process that deserializes it."""

    def __init__(self, log: str, payload: bytes) -> None:
        self.log = log
        self.payload = payload

    def __reduce__(self) -> tuple[object, tuple[str, bytes]]:
        return _arrived, (self.log, self.payload)


def _arrived(log: str, payload: bytes) -> Tracked:
    with open(log, "a") as out:
        out.write(f"{os.getpid()}\n")
    return Tracked(log, payload)


async def test_the_result_goes_to_the_next_stage_not_through_the_caller(
    ray_serve: int, tmp_path: Path
) -> None:
    from ray import serve

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Producer:
        def make(self, log: str) -> Tracked:
            return Tracked(log, b"f" * 300_000)  # above Ray's inline limit: object store

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Consumer:
        def take(self, item: Tracked) -> tuple[int, int]:
            return os.getpid(), len(item.payload)

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Caller:
        def __init__(self, producer, consumer) -> None:
            self._producer = producer
            self._consumer = consumer

        async def __call__(self, log: str) -> tuple[int, int, int]:
            ref = await produced(self._producer.make.remote(log))
            consumer_pid, size = await self._consumer.take.remote(ref)
            return os.getpid(), consumer_pid, size

    handle = serve.run(
        Caller.bind(Producer.bind(), Consumer.bind()), name="chaining", route_prefix=None
    )
    try:
        log = tmp_path / "unpickled"
        caller_pid, consumer_pid, size = await handle.remote(str(log))
    finally:
        serve.delete("chaining")
    assert size == 300_000
    assert log.read_text().split() == [str(consumer_pid)]
    assert caller_pid != consumer_pid
