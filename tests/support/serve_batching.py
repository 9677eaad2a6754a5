"""Undo in-process use of ``@serve.batch`` methods before a real ``serve.run``.

Ray keeps one lazily created batch queue per decorated method, in a closure of the
method's wrapper. A deployment class whose module binds its name to the ``Deployment``
object is pickled by value, closures included, so once a test has driven a batched
method in process (queue created: asyncio objects), deploying that class fails with
"cannot pickle '_asyncio.Future' object". Resetting the queue makes it picklable again.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Deployment


def reset_batch_queues(*deployments: Deployment) -> None:
    """Forget the batch queues of every ``@serve.batch`` method of ``deployments``."""
    for deployment in deployments:
        cls = deployment.func_or_class
        for name in dir(cls):
            setter: Any = getattr(getattr(cls, name, None), "set_max_batch_size", None)
            lazy = getattr(setter, "__self__", None)
            if lazy is not None and hasattr(lazy, "_queue"):
                lazy._queue = None
