"""Holds of a dead process come back within the lease; a live holder keeps its own."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from serve_app.accounts.charging import charge
from serve_app.accounts.context import AccountsContext
from serve_app.accounts.credits import ReservationState
from serve_app.accounts.users import User, create_user
from serve_app.errors import Conflict
from serve_app.storage.orm import utcnow
from serve_app.storage.spool import SpooledFile, renew_held, sweep_orphans
from tests.support.databases import FAST_SETTINGS, SESSION_KEY

LEASE_S = 30


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("serve_app.accounts.credits.utcnow", clock)
    monkeypatch.setattr("serve_app.accounts.idempotency.utcnow", clock)
    return clock


def replica(database) -> AccountsContext:
    """One ingress process's accounts (its renewing thread is driven by hand)."""
    settings = FAST_SETTINGS.model_copy(update={"hold_lease_s": LEASE_S})
    return AccountsContext.build(database, settings, SESSION_KEY)


def payer(accounts: AccountsContext) -> User:
    user = create_user(accounts.database, accounts.passwords, "payer", "password123", credits=50)
    return user


async def test_a_dead_holders_hold_and_key_are_released_within_the_lease(database, clock) -> None:
    dead, survivor = replica(database), replica(database)
    user = payer(dead)
    # The request's process dies inside the charged block: nothing ever leaves it.
    block = charge(dead, user, idempotency_key="k-1", fingerprint="fp")
    handle = await block.__aenter__()
    assert handle.cost == 10 and dead.credits.balance(user.id) == 40

    clock.advance(LEASE_S / 2)
    survivor.leases.beat()
    assert dead.credits.balance(user.id) == 40  # within its lease: still held
    with pytest.raises(Conflict):
        async with charge(survivor, user, idempotency_key="k-1", fingerprint="fp"):
            pass

    clock.advance(LEASE_S / 2 + 1)
    survivor.leases.beat()
    assert survivor.credits.balance(user.id) == 50
    assert survivor.credits.ledger_sum(user.id) == 50
    # The retry with the same key runs (and is charged once).
    async with charge(survivor, user, idempotency_key="k-1", fingerprint="fp") as retry:
        assert retry.replay is None
        retry.record({"ok": True})
    assert survivor.credits.balance(user.id) == 40


async def test_a_live_holder_keeps_its_hold_past_the_lease(database, clock) -> None:
    live, other = replica(database), replica(database)
    user = payer(live)
    async with charge(live, user) as handle:
        for _ in range(4):  # a long request: its process beats every third of the lease
            clock.advance(LEASE_S / 3)
            live.leases.beat()
            other.leases.beat()
        assert other.credits.balance(user.id) == 40
        handle.record({"ok": True})
    assert live.credits.balance(user.id) == 40
    assert live.credits.ledger_sum(user.id) == 40


def test_jobs_holds_have_no_lease_and_are_not_swept(database, clock) -> None:
    accounts = replica(database)
    user = payer(accounts)
    held = accounts.credits.reserve(user.id, 10, "video job")
    clock.advance(LEASE_S * 10)
    accounts.leases.beat()
    assert accounts.credits.state(held.id) is ReservationState.RESERVED


def test_orphaned_spool_files_are_swept_and_held_ones_renewed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    old = time.time() - 120
    orphan = spool / "dead.upload"
    orphan.write_bytes(b"x")
    job_input = spool / "job-1-1.input"  # not an upload: the job runner owns it
    job_input.write_bytes(b"x")
    held_path = spool / "live.upload"
    held_path.write_bytes(b"x")
    held = SpooledFile(held_path, 1, "a.jpg")
    fresh = spool / "arriving.upload"  # being written by a live request right now
    fresh.write_bytes(b"x")
    for path in (orphan, job_input, held_path):
        os.utime(path, (old, old))

    assert sweep_orphans(spool, 60) == 1
    assert not orphan.exists()
    assert job_input.exists() and held_path.exists() and fresh.exists()
    assert renew_held() >= 1
    assert held_path.stat().st_mtime > old
    held.discard()
    assert not held_path.exists()
