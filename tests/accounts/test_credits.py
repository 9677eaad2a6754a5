import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from serve_app.accounts.credits import Credits, ReservationState
from serve_app.accounts.passwords import Passwords
from serve_app.accounts.users import create_user
from serve_app.errors import InsufficientCredits, NotFound
from serve_app.storage.orm import utcnow
from tests.support.databases import FAST_SETTINGS


def make_user(database, credits=0, name="alice"):
    return create_user(database, Passwords(FAST_SETTINGS), name, "password123", credits=credits)


def assert_consistent(credits, user_id, balance):
    assert credits.balance(user_id) == balance
    assert credits.ledger_sum(user_id) == balance


def test_reserve_capture_keeps_the_credits(database):
    user = make_user(database, credits=25)
    credits = Credits(database)
    reservation = credits.reserve(user.id, 10, "analysis")
    assert reservation.state is ReservationState.RESERVED
    assert reservation.balance_after == 15
    assert credits.capture(reservation) is True
    assert credits.capture(reservation) is False  # a retry changes nothing
    assert credits.release(reservation) is False  # captured credits stay spent
    assert credits.state(reservation.id) is ReservationState.CAPTURED
    assert_consistent(credits, user.id, 15)


def test_release_returns_the_credits_exactly_once(database):
    user = make_user(database, credits=25)
    credits = Credits(database)
    reservation = credits.reserve(user.id, 10, "analysis")
    assert credits.release(reservation) is True
    assert credits.release(reservation) is False
    assert credits.capture(reservation) is False
    assert credits.state(reservation.id) is ReservationState.RELEASED
    assert_consistent(credits, user.id, 25)


def test_insufficient_credits_changes_nothing(database):
    user = make_user(database, credits=9)
    credits = Credits(database)
    with pytest.raises(InsufficientCredits, match="costs 10 credits and your balance is 9"):
        credits.reserve(user.id, 10, "analysis")
    assert_consistent(credits, user.id, 9)


def test_unknown_user_is_not_found(database):
    with pytest.raises(NotFound):
        Credits(database).reserve(12345, 10, "analysis")


def test_fifty_concurrent_reservations_from_a_balance_for_three(database):
    user = make_user(database, credits=30)
    credits = Credits(database)
    barrier = Barrier(50)

    def attempt(_):
        barrier.wait()
        try:
            return credits.reserve(user.id, 10, "analysis")
        except InsufficientCredits:
            return None

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(attempt, range(50)))
    succeeded = [r for r in results if r is not None]
    assert len(succeeded) == 3
    assert results.count(None) == 47
    assert_consistent(credits, user.id, 0)


def test_concurrent_reservations_with_one_idempotency_key_charge_once(database):
    user = make_user(database, credits=100)
    credits = Credits(database)
    barrier = Barrier(20)

    def attempt(_):
        barrier.wait()
        return credits.reserve(user.id, 10, "analysis", idempotency_key="key-1")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(attempt, range(20)))
    assert len({r.id for r in results}) == 1
    assert sum(not r.reused for r in results) == 1
    assert_consistent(credits, user.id, 90)


def test_a_released_key_can_reserve_again(database):
    user = make_user(database, credits=100)
    credits = Credits(database)
    first = credits.reserve(user.id, 10, "analysis", idempotency_key="k")
    credits.release(first)
    second = credits.reserve(user.id, 10, "analysis", idempotency_key="k")
    assert second.id != first.id and not second.reused
    assert_consistent(credits, user.id, 90)


def test_grants_and_negative_grants(database):
    user = make_user(database, credits=5)
    credits = Credits(database)
    assert credits.grant(user.id, 20) == 25
    assert credits.grant(user.id, -25) == 0
    with pytest.raises(InsufficientCredits):
        credits.grant(user.id, -1)
    assert_consistent(credits, user.id, 0)


def test_release_stale_returns_abandoned_reservations(database, monkeypatch):
    user = make_user(database, credits=20)
    credits = Credits(database)
    old = credits.reserve(user.id, 10, "crashed worker")
    assert credits.release_stale(dt.timedelta(hours=1)) == 0
    later = utcnow() + dt.timedelta(hours=2)
    monkeypatch.setattr("serve_app.accounts.credits.utcnow", lambda: later)
    assert credits.release_stale(dt.timedelta(hours=1)) == 1
    assert credits.state(old.id) is ReservationState.RELEASED
    assert_consistent(credits, user.id, 20)
