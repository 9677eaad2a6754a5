"""Rate limits shared through Redis by every ingress replica (issue 18, item 3).

Each test runs its own ``redis-server`` (tests/support/redis_servers.py); two
AccountsContexts over one database and one Redis stand in for two ingress replicas.
"""

from __future__ import annotations

import time

import pytest

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.redis_limits import OUTAGE_BACKOFF_S, RedisLimits
from serve_app.accounts.users import create_user
from serve_app.errors import BackendUnavailable, RateLimited
from tests.support.accounts_app import build_app, client_for
from tests.support.databases import FAST_SETTINGS, SESSION_KEY
from tests.support.redis_servers import RedisServer


def test_one_budget_across_replicas(redis_server: RedisServer) -> None:
    replicas = [RedisLimits(redis_server.url).bucket("api", 0.1, 3, what="requests") for _ in "ab"]
    replicas[0].hit("user:1")
    replicas[1].hit("user:1")
    replicas[0].hit("user:1")
    with pytest.raises(RateLimited) as refused:
        replicas[1].hit("user:1")
    assert refused.value.retry_after_s == 10
    replicas[1].hit("user:2")  # another key has its own budget
    other = RedisLimits(redis_server.url).bucket("login", 0.1, 3, what="logins")
    other.hit("user:1")  # and another namespace too


def test_the_bucket_refills_on_the_servers_clock(redis_server: RedisServer) -> None:
    bucket = RedisLimits(redis_server.url).bucket("api", 20.0, 1, what="requests")
    bucket.hit("k")
    with pytest.raises(RateLimited):
        bucket.hit("k")
    time.sleep(0.08)  # 20 per second: one token back after 50 ms
    bucket.hit("k")


def test_full_buckets_expire(redis_server: RedisServer) -> None:
    limits = RedisLimits(redis_server.url)
    limits.bucket("api", 100.0, 2, what="requests").hit("k")
    ttl_ms = limits.client.pttl("serve_app:limit:api:k")
    assert 0 < ttl_ms <= 1000 + 10  # refilled within 10 ms, plus a second of grace


def test_outage_open_lets_requests_through_then_limits_resume(redis_server: RedisServer) -> None:
    limits = RedisLimits(redis_server.url, "open")
    bucket = limits.bucket("api", 0.1, 1, what="requests")
    bucket.hit("k")
    redis_server.stop()
    started = time.monotonic()
    for _ in range(20):
        bucket.hit("k")  # no Redis: let through
    assert time.monotonic() - started < 1.0  # one timeout, then the backoff skips Redis
    redis_server.start()  # an empty Redis on the same port
    time.sleep(OUTAGE_BACKOFF_S + 0.1)
    bucket.hit("k")
    with pytest.raises(RateLimited):
        bucket.hit("k")


def test_outage_closed_refuses_with_retry_after(redis_server: RedisServer) -> None:
    bucket = RedisLimits(redis_server.url, "closed").bucket("api", 1.0, 5, what="requests")
    bucket.hit("k")
    redis_server.stop()
    with pytest.raises(BackendUnavailable) as refused:
        bucket.hit("k")
    assert refused.value.retry_after_s >= 1


def replica(database, redis_url: str, **overrides) -> AccountsContext:
    settings = FAST_SETTINGS.model_copy(update={"redis_url": redis_url, **overrides})
    return AccountsContext.build(database, settings, SESSION_KEY)


async def test_two_replicas_share_the_request_budget_over_http(database, redis_server) -> None:
    first = replica(database, redis_server.url, rate_limit_burst=4, rate_limit_per_s=0.1)
    second = replica(database, redis_server.url, rate_limit_burst=4, rate_limit_per_s=0.1)
    alice = create_user(database, first.passwords, "alice", "password123", credits=0)
    token = first.tokens.create(alice.id, "ci").token
    headers = {"Authorization": f"Bearer {token}"}
    codes = []
    async with client_for(build_app(first)) as a, client_for(build_app(second)) as b:
        for client in (a, b, a, b, a, b):
            codes.append((await client.get("/api/me", headers=headers)).status_code)
    assert codes == [200, 200, 200, 200, 429, 429]


async def test_two_replicas_share_login_and_failed_token_throttles(database, redis_server) -> None:
    overrides = {"login_burst": 2, "failed_auth_burst": 3}
    first = replica(database, redis_server.url, **overrides)
    second = replica(database, redis_server.url, **overrides)
    create_user(database, first.passwords, "bob", "password123")
    async with client_for(build_app(first)) as a, client_for(build_app(second)) as b:
        logins = [
            (await c.post("/login", json={"username": "bob", "password": "wrong"})).status_code
            for c in (a, b, a)
        ]
        bad_tokens = [
            (await c.get("/api/me", headers={"Authorization": "Bearer sa_x"})).status_code
            for c in (a, b, a, b)
        ]
    assert logins == [401, 401, 429]
    assert bad_tokens == [401, 401, 401, 429]


def test_without_redis_url_each_replica_limits_alone(database) -> None:
    first, second = (AccountsContext.build(database, FAST_SETTINGS, SESSION_KEY) for _ in "ab")
    assert first.api_limiter is not second.api_limiter
    assert type(first.api_limiter).__name__ == "TokenBucketLimiter"
