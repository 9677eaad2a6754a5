import pytest

from serve_app.accounts.rate_limit import LoginLimiter, TokenBucketLimiter
from serve_app.errors import RateLimited


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_burst_then_refill_with_retry_after():
    clock = Clock()
    limiter = TokenBucketLimiter(rate_per_s=0.5, burst=3, clock=clock)
    for _ in range(3):
        limiter.hit("a")
    with pytest.raises(RateLimited) as caught:
        limiter.hit("a")
    assert caught.value.retry_after_s == 2
    limiter.hit("b")  # other keys have their own bucket
    clock.now += 2.0
    limiter.hit("a")
    with pytest.raises(RateLimited):
        limiter.hit("a")


def test_bucket_count_is_bounded():
    limiter = TokenBucketLimiter(rate_per_s=1, burst=1, max_keys=10, clock=Clock())
    for i in range(100):
        limiter.hit(str(i))
    assert len(limiter._buckets) == 10


def test_login_limits_per_username_and_address():
    clock = Clock()
    limiter = LoginLimiter(per_minute=6, burst=2, clock=clock)
    limiter.hit("alice", "1.2.3.4")
    limiter.hit("Alice", "1.2.3.4")
    with pytest.raises(RateLimited) as caught:
        limiter.hit("alice", "1.2.3.4")
    assert caught.value.retry_after_s == 10
    limiter.hit("alice", "5.6.7.8")
    limiter.hit("bob", "1.2.3.4")


def test_one_address_cannot_spray_many_usernames():
    limiter = LoginLimiter(per_minute=6, burst=2, clock=Clock())
    for i in range(8):
        limiter.hit(f"user{i}", "1.2.3.4")
    with pytest.raises(RateLimited):
        limiter.hit("user99", "1.2.3.4")
