import asyncio

import pytest

from serve_app.accounts.charging import charge
from serve_app.accounts.idempotency import fingerprint
from serve_app.accounts.users import create_user
from serve_app.errors import Conflict, IdempotencyKeyReused, InsufficientCredits


def make_user(accounts, credits=0, name="alice", is_admin=False):
    return create_user(
        accounts.database,
        accounts.passwords,
        name,
        "password123",
        credits=credits,
        is_admin=is_admin,
    )


def assert_balance(accounts, user_id, balance):
    assert accounts.credits.balance(user_id) == balance
    assert accounts.credits.ledger_sum(user_id) == balance


async def test_success_captures_and_reports_the_remaining_balance(accounts):
    user = make_user(accounts, credits=25)
    async with charge(accounts, user) as handle:
        assert handle.replay is None
        assert (handle.cost, handle.remaining) == (10, 15)
        handle.record({"result": "ok"})
    assert_balance(accounts, user.id, 15)


async def test_admins_are_not_charged(accounts):
    admin = make_user(accounts, credits=0, name="root", is_admin=True)
    async with charge(accounts, admin) as handle:
        assert (handle.cost, handle.remaining) == (0, 0)
    assert_balance(accounts, admin.id, 0)


async def test_insufficient_credits_runs_nothing(accounts):
    user = make_user(accounts, credits=5)
    ran = False
    with pytest.raises(InsufficientCredits):
        async with charge(accounts, user, idempotency_key="k", fingerprint="f"):
            ran = True
    assert not ran
    assert_balance(accounts, user.id, 5)
    # The key was not kept: a retry after a top-up runs.
    accounts.credits.grant(user.id, 10)
    async with charge(accounts, user, idempotency_key="k", fingerprint="f") as handle:
        assert handle.replay is None


async def test_an_exception_in_the_block_releases_exactly_once(accounts):
    user = make_user(accounts, credits=30)
    with pytest.raises(RuntimeError):
        async with charge(accounts, user):
            raise RuntimeError("model crashed")
    assert_balance(accounts, user.id, 30)
    assert accounts.credits.ledger_sum(user.id) == 30


async def test_a_timeout_releases(accounts):
    user = make_user(accounts, credits=30)
    with pytest.raises(TimeoutError):
        async with charge(accounts, user):
            await asyncio.wait_for(asyncio.sleep(10), timeout=0.01)
    assert_balance(accounts, user.id, 30)


async def test_cancellation_still_releases(accounts):
    user = make_user(accounts, credits=30)
    started = asyncio.Event()

    async def request():
        async with charge(accounts, user):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(request())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(500):  # the release finishes in its thread
        if accounts.credits.balance(user.id) == 30:
            break
        await asyncio.sleep(0.02)
    assert_balance(accounts, user.id, 30)


async def test_idempotency_key_replays_the_first_response_and_charges_once(accounts):
    user = make_user(accounts, credits=100)
    fp = fingerprint("POST", "/api/analyze", b"image bytes")
    async with charge(accounts, user, idempotency_key="abc", fingerprint=fp) as handle:
        handle.record({"result": "first", "tokens_used": 10}, status_code=200)
    async with charge(accounts, user, idempotency_key="abc", fingerprint=fp) as again:
        assert again.replay is not None
        assert again.replay.body == {"result": "first", "tokens_used": 10}
        assert again.replay.status_code == 200
    assert_balance(accounts, user.id, 90)


async def test_same_key_different_request_is_refused(accounts):
    user = make_user(accounts, credits=100)
    async with charge(accounts, user, idempotency_key="abc", fingerprint="one") as handle:
        handle.record({})
    with pytest.raises(IdempotencyKeyReused):
        async with charge(accounts, user, idempotency_key="abc", fingerprint="two"):
            pass
    assert_balance(accounts, user.id, 90)


async def test_concurrent_duplicates_get_409_and_are_not_charged(accounts):
    user = make_user(accounts, credits=100)
    claimed = asyncio.Event()
    release = asyncio.Event()

    async def first():
        async with charge(accounts, user, idempotency_key="dup", fingerprint="f") as handle:
            claimed.set()
            await release.wait()
            handle.record({"n": 1})

    task = asyncio.create_task(first())
    await asyncio.wait_for(claimed.wait(), timeout=30)
    results = await asyncio.gather(
        *[self_charge(accounts, user) for _ in range(10)], return_exceptions=True
    )
    assert all(isinstance(r, Conflict) for r in results), results
    release.set()
    await task
    assert_balance(accounts, user.id, 90)


async def self_charge(accounts, user):
    async with charge(accounts, user, idempotency_key="dup", fingerprint="f"):
        pass


async def test_fifty_concurrent_charges_with_one_key_charge_once(accounts):
    user = make_user(accounts, credits=100)

    async def attempt():
        try:
            async with charge(accounts, user, idempotency_key="same", fingerprint="f") as h:
                if h.replay is None:
                    h.record({"ok": True})
                return "ran" if h.replay is None else "replayed"
        except Conflict:
            return "conflict"

    results = await asyncio.gather(*[attempt() for _ in range(50)])
    assert results.count("ran") == 1
    assert_balance(accounts, user.id, 90)


async def test_fifty_concurrent_charges_from_a_balance_for_three(accounts):
    user = make_user(accounts, credits=30)

    async def attempt():
        try:
            async with charge(accounts, user) as handle:
                await asyncio.sleep(0.01)
                return handle.cost
        except InsufficientCredits:
            return None

    results = await asyncio.gather(*[attempt() for _ in range(50)])
    assert results.count(10) == 3 and results.count(None) == 47
    assert_balance(accounts, user.id, 0)


async def test_a_key_whose_response_expired_is_not_run_for_free(accounts, monkeypatch):
    import datetime as dt

    from serve_app.storage.orm import utcnow

    user = make_user(accounts, credits=100)
    async with charge(accounts, user, idempotency_key="old", fingerprint="f") as handle:
        handle.record({"n": 1})
    later = utcnow() + dt.timedelta(days=3)
    monkeypatch.setattr("serve_app.accounts.idempotency.utcnow", lambda: later)
    assert accounts.idempotency.purge(dt.timedelta(days=1)) == 1
    with pytest.raises(Conflict):
        async with charge(accounts, user, idempotency_key="old", fingerprint="f"):
            pytest.fail("must not run")
    assert_balance(accounts, user.id, 90)


async def test_admin_work_leaves_a_zero_cost_ledger_row(accounts):
    from sqlalchemy import select

    from serve_app.accounts.models import CreditLedgerRow

    admin = make_user(accounts, credits=0, name="root", is_admin=True)
    async with charge(accounts, admin, reason="analysis") as handle:
        handle.record({"ok": True})
    with pytest.raises(RuntimeError):
        async with charge(accounts, admin, reason="analysis"):
            raise RuntimeError("failed: nothing ran to record")
    with accounts.database.transaction() as session:
        rows = session.execute(
            select(CreditLedgerRow.kind, CreditLedgerRow.delta, CreditLedgerRow.reason).where(
                CreditLedgerRow.user_id == admin.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("admin", 0, "analysis")]
    assert_balance(accounts, admin.id, 0)
