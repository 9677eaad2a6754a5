import pytest

from serve_app.accounts.in_flight import InFlightCaps
from serve_app.errors import RateLimited


def test_requests_and_bytes_are_capped_per_user_and_given_back() -> None:
    caps = InFlightCaps(max_requests=2, max_bytes=100, retry_after_s=3)
    first = caps.admit(1, 60)
    caps.admit(2, 100)  # another user has their own budget
    with pytest.raises(RateLimited) as refused:
        caps.admit(1, 41)
    assert refused.value.retry_after_s == 3
    second = caps.admit(1, 40)
    with pytest.raises(RateLimited):
        caps.admit(1, 0)
    first.release()
    first.release()  # once only
    assert caps.in_flight(1) == (1, 40)
    second.release()
    assert caps.in_flight(1) == (0, 0)


def test_bodies_of_unknown_length_grow_until_the_cap() -> None:
    caps = InFlightCaps(max_requests=4, max_bytes=100)
    lease = caps.admit(1, 0)
    lease.grow(90)
    with pytest.raises(RateLimited):
        lease.grow(11)
    assert caps.in_flight(1) == (1, 90)
    lease.release()
    assert caps.in_flight(1) == (0, 0)
