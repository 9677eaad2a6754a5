"""Owner leases: what a live process holds is renewed; what a dead one held is let go.

Each ingress process keeps the credit holds and ``Idempotency-Key`` claims of its
running requests here. A daemon thread renews them every third of ``lease_s`` and,
on the same beat, releases every hold whose lease has run out (whichever process
held it), then runs the extra hooks (the spool's file leases). So when a process dies
mid-request, its holds return and its keys are free within about ``lease_s``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from serve_app.accounts.credits import Credits
from serve_app.accounts.idempotency import IdempotencyStore

logger = logging.getLogger(__name__)


class HoldLeases:
    """The holds of this process, and the thread that renews and sweeps."""

    def __init__(self, credits: Credits, idempotency: IdempotencyStore, lease_s: float) -> None:
        self.lease_s = lease_s
        self._credits = credits
        self._idempotency = idempotency
        self._reservations: set[str] = set()
        self._records: set[int] = set()
        self._hooks: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, reservation_id: str | None, record_id: int | None) -> None:
        with self._lock:
            if reservation_id is not None:
                self._reservations.add(reservation_id)
            if record_id is not None:
                self._records.add(record_id)

    def drop(self, reservation_id: str | None, record_id: int | None) -> None:
        with self._lock:
            self._reservations.discard(reservation_id or "")
            self._records.discard(record_id or -1)

    def add_hook(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` on every beat (after renewing and sweeping the holds)."""
        self._hooks.append(hook)

    def beat(self) -> None:
        """Renew this process's holds, release expired ones, run the hooks."""
        with self._lock:
            reservations, records = set(self._reservations), set(self._records)
        try:
            self._credits.renew_leases(reservations, self.lease_s)
            self._idempotency.renew(records)
            self._credits.release_expired()
        except Exception:
            logger.warning("renewing credit holds failed; will retry", exc_info=True)
        for hook in self._hooks:
            try:
                hook()
            except Exception:
                logger.warning("a lease hook failed; will retry", exc_info=True)

    def start(self) -> None:
        """Start the renewing thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hold-leases", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            self.beat()
